// Passkeys and security keys: the only script the sign-in needs. On
// button#webauthn-register (registration) or button#webauthn-signin (the
// challenge), it passes the button's data-options to
// navigator.credentials.create or .get, puts the answer's JSON in the
// form's hidden input #webauthn-credential and submits the form (with its
// CSRF token). Without JavaScript the page says why nothing happens.
(function () {
  "use strict";
  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = toBuf(c.id); });
  }
  function encode(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64(r.userHandle); }
    }
    return JSON.stringify(out);
  }
  function wire(button, create) {
    var form = button.form, error = document.getElementById("webauthn-error");
    button.addEventListener("click", function () {
      if (create && !form.reportValidity()) { return; }
      if (error) { error.hidden = true; }
      var pk = JSON.parse(button.getAttribute("data-options")).publicKey;
      pk.challenge = toBuf(pk.challenge);
      var p;
      if (create) {
        pk.user.id = toBuf(pk.user.id);
        ids(pk.excludeCredentials);
        p = navigator.credentials.create({ publicKey: pk });
      } else {
        ids(pk.allowCredentials);
        p = navigator.credentials.get({ publicKey: pk });
      }
      button.disabled = true;
      p.then(function (cred) {
        document.getElementById("webauthn-credential").value = encode(cred);
        form.submit();
      }).catch(function () {
        button.disabled = false;
        if (error) { error.hidden = false; }
      });
    });
  }
  function start() {
    var reg = document.getElementById("webauthn-register"), sign = document.getElementById("webauthn-signin");
    if (reg) { wire(reg, true); }
    if (sign) { wire(sign, false); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
