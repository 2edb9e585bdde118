import os
import warnings

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omni.settings")

# WhiteNoise serves static files as a FileResponse with a synchronous iterator; under ASGI Django
# reads it in a worker thread and warns on every file. That is fine for our static files (small,
# cached by the browser), so the warning would only bury real log lines.
warnings.filterwarnings(
    "ignore",
    message="StreamingHttpResponse must consume synchronous iterators",
    category=Warning,
    module="django.core.handlers.asgi",
)

application = get_asgi_application()
