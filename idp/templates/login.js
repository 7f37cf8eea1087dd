// dingbridge's QR login page: embeds DingTalk's QR frame (DTFrameLogin) in
// #dt-qr, configured by the container's data-* attributes. A result is
// accepted only from DingTalk's login origin (data-login-origin, BR-11), and
// only if it sends the browser to our own QR callback; the callback then
// checks state against this browser.
(function () {
  "use strict";
  var box = document.getElementById("dt-qr");
  if (!box || typeof window.DTFrameLogin !== "function") return;
  var d = box.dataset;
  var done = false;

  function go(redirectUrl) {
    if (done || typeof redirectUrl !== "string") return;
    var u;
    try { u = new URL(redirectUrl); } catch (e) { return; }
    var want = new URL(d.redirectUri);
    if (u.origin !== want.origin || u.pathname !== want.pathname || u.searchParams.get("state") !== d.state) return;
    done = true;
    window.location.assign(u.href);
  }

  window.addEventListener("message", function (ev) {
    if (ev.origin !== d.loginOrigin) return;
    var data = ev.data || {};
    if (data.success && data.redirectUrl) go(data.redirectUrl);
  });

  window.DTFrameLogin(
    { id: "dt-qr", width: 300, height: 300 },
    {
      redirect_uri: encodeURIComponent(d.redirectUri),
      client_id: d.clientId,
      scope: "openid corpid",
      response_type: "code",
      prompt: "consent",
      state: d.state,
      corpId: d.corpId
    },
    function (result) { go(result && result.redirectUrl); },
    function () { /* the plain link below the frame still works */ }
  );
})();
