// dingbridge's workbench one-click page: asks the DingTalk client for a
// free-login code (dd.requestAuthCode) and posts it, with the page's CSRF
// token, in the form #workbench.
(function () {
  "use strict";
  var form = document.getElementById("workbench");
  if (!form) return;
  var d = form.dataset;

  function fail(err) {
    var p = document.getElementById("workbench-error");
    if (!p) return;
    var msg = err && (err.errorMessage || err.message);
    p.textContent = "DingTalk: " + (msg ? String(msg) : "requestAuthCode failed");
    p.hidden = false;
  }

  if (!window.dd || typeof window.dd.requestAuthCode !== "function") {
    fail({ errorMessage: "请在钉钉中打开 / open this page in DingTalk" });
    return;
  }
  window.dd.requestAuthCode({
    corpId: d.corpId,
    clientId: d.clientId,
    onSuccess: function (res) {
      if (!res || !res.code) { fail(); return; }
      form.elements.code.value = res.code;
      form.submit();
    },
    onFail: fail
  });
})();
