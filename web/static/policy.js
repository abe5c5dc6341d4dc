// The policy editor's worked example follows the form as you type: the form is posted with
// do=example (nothing is saved) and the rules engine's answer replaces the example box.
// Without JavaScript the "Update the example" button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form.policy");
  var box = document.getElementById("example");
  if (!form || !box || !window.fetch || !window.DOMParser) { return; }
  var timer = null;
  var serial = 0;
  function refresh() {
    var data = new FormData(form);
    data.set("do", "example");
    var mine = ++serial;
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (mine !== serial) { return; }  // an older answer arriving late
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("example");
        if (fresh) { box.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the button still works */ });
  }
  function later() { window.clearTimeout(timer); timer = window.setTimeout(refresh, 350); }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
