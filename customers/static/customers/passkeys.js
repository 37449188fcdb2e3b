// The Two factors page: once django-otp-webauthn's script has registered a passkey, show
// the page again so the new passkey is listed (no inline script: CSP).
document.addEventListener("otp_webauthn.register_complete", function () {
  window.location.reload();
});
