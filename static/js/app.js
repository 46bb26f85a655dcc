// Sends the user back to the log-in page when an htmx request meets an expired session.
document.addEventListener("htmx:beforeSwap", function (event) {
  if (event.detail.xhr.status === 401 || event.detail.xhr.responseURL.includes("/accounts/login/")) {
    window.location.href = "/accounts/login/";
  }
});

// A form whose refusal comes back as its own partial (400, 409 or 422, the message on the form)
// opts in with data-swap-errors on an ancestor; htmx 2 does not swap 4xx answers otherwise.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  var source = event.target instanceof Element ? event.target : null;
  if ((status === 400 || status === 409 || status === 422) && source && source.closest("[data-swap-errors]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
