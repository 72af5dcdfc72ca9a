// The API reference page: Swagger UI drawn from the document the page names (no inline script under the CSP).
document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("api-reference");
  if (!target || !window.SwaggerUIBundle) return;
  window.SwaggerUIBundle({
    url: target.dataset.documentUrl,
    domNode: target,
    deepLinking: true,
    validatorUrl: null, // never call the public validator: nothing leaves the site
    defaultModelsExpandDepth: 0,
    docExpansion: "list",
  });
});
