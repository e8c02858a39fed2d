# One image for web and workers; build the GPU worker's with `--build-arg EXTRAS=gpu`.
FROM python:3.12-slim

ARG EXTRAS=""
# DEBUG is off by default; said here too so that nothing in the image turns it on.
ENV DEBUG=0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 sieve \
    && mkdir -p /data/images /data/media /app/var \
    && chown -R sieve:sieve /data /app/var

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY annotate ./annotate
COPY classifier ./classifier
RUN pip install ".${EXTRAS:+[$EXTRAS]}"

COPY . .
# Static files are collected at build time with a throwaway key (settings refuse to start
# without one when DEBUG is off); the running containers get the real SECRET_KEY.
RUN DEBUG=0 ALLOWED_HOSTS=build SECRET_KEY=build-time-only-key-never-used-to-sign-anything-000 \
    python manage.py collectstatic --noinput \
    && chown -R sieve:sieve /app/var

USER sieve
EXPOSE 8000
CMD ["gunicorn", "annotate.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
