"""Platform endpoints: exchange credentials for an API token."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omni.http import client_ip
from omni.services import user_authenticate


class TokenObtainApi(APIView):
    """POST a username and password; get the user's API token (revocable in the admin)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("TokenOutput", {"token": serializers.CharField()})},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_authenticate(
            request=request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
            ip_address=client_ip(request._request),
            channel="api",
        )
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
