// The rating queue's keys. Two answers: 1 = the first shown wins, 2 = the second, 3 = tie,
// 4 = both bad. More answers: their numbers best first, then Enter (Backspace takes one back,
// 0 = all bad). s skips. Keys typed into a text field are left alone.
(function () {
  "use strict";
  var form = document.getElementById("queue-judge");
  if (!form) return;
  var answers = Number(form.dataset.answers);
  var order = document.getElementById("queue-order");
  var sent = false;

  function submitWith(selector) {
    var button = document.querySelector(selector);
    if (!button || sent) return;
    sent = true;
    button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    var target = event.target;
    if (target && target.matches && target.matches("input, textarea, select")) return;
    var key = event.key;
    if (key === "s") {
      event.preventDefault();
      submitWith("#queue-skip button");
    } else if (answers === 2) {
      if (["1", "2", "3", "4"].indexOf(key) < 0) return;
      event.preventDefault();
      submitWith('#queue-judge button[name="pick"][value="' + key + '"]');
    } else if (key === "0") {
      event.preventDefault();
      submitWith('#queue-judge button[name="all_bad"]');
    } else if (/^[1-9]$/.test(key) && Number(key) <= answers) {
      event.preventDefault();
      if (order.value.indexOf(key) < 0) order.value += key;
    } else if (key === "Backspace") {
      event.preventDefault();
      order.value = order.value.slice(0, -1);
    } else if (key === "Enter" && order.value) {
      event.preventDefault();
      submitWith('#queue-judge button[name="rank"]');
    }
  });
  // Keys work from here on (a page test waits for this before pressing any).
  form.dataset.keys = "ready";
})();
