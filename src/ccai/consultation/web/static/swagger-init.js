// Starts Swagger UI on /api/docs from a file, because the app's CSP allows no inline script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
});
