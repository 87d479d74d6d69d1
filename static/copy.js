// Copy buttons: <button type="button" data-copy="#field-id">. A file of its
// own, since the Content-Security-Policy allows no inline script. Without
// JavaScript the field is still there to select and copy by hand.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.getAttribute("data-copy"));
  if (!field) return;
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
  } else {
    field.select();
    try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: copy by hand */ }
  }
});
