# The app on CPU. Models (Hugging Face cache) and the Milvus Lite data live in the /data volume.
#   docker build -t ask-docs . && docker run -p 7860:7860 -v ask-docs-data:/data -e OPENAI_API_KEY ask-docs
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/data/huggingface RAG_DATA_DIR=/data RAG_MILVUS_URI=/data/milvus.db \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False

RUN useradd --create-home --uid 1000 app && mkdir -p /data && chown app:app /data
WORKDIR /home/app/src

COPY requirements.txt .
# The CPU build of torch first, so the pinned requirement is already met and no CUDA build is pulled.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r requirements.txt

COPY --chown=app:app app.py ./
COPY --chown=app:app rag ./rag
COPY --chown=app:app config ./config
COPY --chown=app:app corpus ./corpus

USER app
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=4)" || exit 1
CMD ["python", "app.py"]
