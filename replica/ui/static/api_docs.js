// The API console: Swagger UI over /api/v0/openapi.json, calling the API with this
// browser's session (the cookie) and the page's CSRF token.
"use strict";
window.addEventListener("load", () => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  window.SwaggerUIBundle({
    urls: [
      { url: "/api/v0/openapi.json?version=3.0", name: "Management API (/api/v0)" }, // it reads 3.0
      { url: "/api/v0/openapi-registry.json", name: "Registry API (/v2)" },
    ],
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    requestInterceptor: (request) => {
      request.headers["X-CSRF-Token"] = token;
      request.credentials = "same-origin";
      return request;
    },
  });
});
