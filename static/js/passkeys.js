// The browser half of the WebAuthn ceremonies (ketaclinic/accounts/passkeys.py does the rest).
(function () {
  "use strict";
  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    return Uint8Array.from(atob(base64), function (c) { return c.charCodeAt(0); });
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function csrf(form) { return form.querySelector("input[name=csrfmiddlewaretoken]").value; }
  function post(url, form, body, isJson) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: Object.assign({ "X-CSRFToken": csrf(form) }, isJson ? { "Content-Type": "application/json" } : {}),
      body: body,
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.detail || "The passkey was refused."); }
        return data;
      });
    });
  }
  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: toBytes(d.id) }); });
  }
  function show(form, message) {
    var box = form.querySelector("#passkey-error");
    box.textContent = message;
    box.hidden = false;
  }

  var register = document.getElementById("passkey-register");
  if (register) {
    register.addEventListener("submit", function (event) {
      event.preventDefault();
      post(register.dataset.options, register, "", false).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.user.id = toBytes(options.user.id);
        options.excludeCredentials = descriptors(options.excludeCredentials);
        return navigator.credentials.create({ publicKey: options });
      }).then(function (credential) {
        var body = {
          name: register.querySelector("[name=name]").value,
          credential: {
            id: credential.id, rawId: toText(credential.rawId), type: credential.type,
            response: {
              clientDataJSON: toText(credential.response.clientDataJSON),
              attestationObject: toText(credential.response.attestationObject),
            },
            clientExtensionResults: credential.getClientExtensionResults(),
          },
        };
        return post(register.dataset.register, register, JSON.stringify(body), true);
      }).then(function () { window.location.reload(); })
        .catch(function (error) { show(register, error.message); });
    });
  }

  var button = document.getElementById("passkey-login");
  if (button) {
    button.hidden = !window.PublicKeyCredential;
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var data = new FormData(form);
      post(button.dataset.options, form, data, false).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.allowCredentials = descriptors(options.allowCredentials);
        return navigator.credentials.get({ publicKey: options });
      }).then(function (credential) {
        var body = {
          next: data.get("next"),
          credential: {
            id: credential.id, rawId: toText(credential.rawId), type: credential.type,
            response: {
              clientDataJSON: toText(credential.response.clientDataJSON),
              authenticatorData: toText(credential.response.authenticatorData),
              signature: toText(credential.response.signature),
              userHandle: credential.response.userHandle ? toText(credential.response.userHandle) : null,
            },
            clientExtensionResults: credential.getClientExtensionResults(),
          },
        };
        return post(button.dataset.verify, form, JSON.stringify(body), true);
      }).then(function (answer) { window.location.href = answer.redirect; })
        .catch(function (error) { show(form, error.message); });
    });
  }
})();
