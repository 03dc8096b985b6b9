/* /docs: start the vendored Swagger UI on the agent's own /openapi.json (no inline script:
   the page's CSP allows scripts from 'self' only). Writes from "Try it out" carry the
   session's CSRF token, read once from /api/v1/auth/me. */
(function () {
  "use strict";
  var csrf = null;
  fetch("/api/v1/auth/me", { credentials: "same-origin" })
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(function (me) { csrf = me ? me.csrf_token : null; })
    .catch(function () { csrf = null; });
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (csrf) { request.headers["X-CSRF-Token"] = csrf; }
      return request;
    }
  });
})();
