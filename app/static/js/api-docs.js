// The interactive API docs at /docs: the vendored Swagger UI over this service's own OpenAPI document.
// A classic script, not a module: Swagger UI's bundle defines the global it needs.
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Validation would send the document to swagger.io; an offline deployment keeps it here.
    validatorUrl: null,
    // The key typed into "Authorize" stays in this page's memory, never in storage.
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
});
