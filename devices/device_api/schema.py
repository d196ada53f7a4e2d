"""How the OpenAPI schema describes the device API's authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceJWTScheme(OpenApiAuthenticationExtension):
    target_class = "devices.device_auth.DeviceJWTAuthentication"
    name = "deviceJWT"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "ES256 JWT signed with the device's own key: iss = device_id, "
            "exp at most DEVICE_JWT_MAX_SECONDS ahead, optional kid = certificateId.",
        }
