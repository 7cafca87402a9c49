# The mailarchive application image: web (gunicorn), Celery worker and beat.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MAILARCHIVE_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY mailarchive ./mailarchive
COPY accounts ./accounts
COPY spaces ./spaces
COPY api ./api
COPY operations ./operations
COPY users ./users
COPY templates ./templates
COPY static ./static
COPY locale ./locale
COPY manage.py ./
# The pinned, hash-checked dependencies first; then the app without resolving.
RUN pip install --no-cache-dir --require-hashes -r requirements.lock \
    && pip install --no-cache-dir --no-deps . \
    && useradd --system --home /data mailarchive \
    && mkdir -p /data && chown mailarchive /data
USER mailarchive
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v 0
EXPOSE 8000
CMD ["gunicorn", "mailarchive.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
