// Copy buttons of the clients page. Each button copies the text of the
// element its data-copy attribute names and says so in the status element
// next to it. The buttons are hidden in the HTML and shown here, so that
// without JavaScript nobody meets a button that does nothing: the text is
// plain and can be selected by hand.
(function () {
  "use strict";

  function selectContents(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var target = document.getElementById(btn.getAttribute("data-copy"));
    var status = document.getElementById(btn.getAttribute("data-copy") + "-status");
    if (!target) {
      return;
    }
    btn.hidden = false;
    btn.addEventListener("click", function () {
      // Selected either way: if the clipboard is refused, Ctrl+C works.
      selectContents(target);
      var say = function (attr) {
        if (status) {
          status.textContent = btn.getAttribute(attr);
        }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(target.textContent).then(
          function () { say("data-copied"); },
          function () { say("data-selected"); }
        );
      } else {
        say("data-selected");
      }
    });
  });
})();
