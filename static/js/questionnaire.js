// Questionnaires on a phone: show how many questions are answered, and keep the answers in this
// tab (sessionStorage) so a dropped connection or a reload does not lose them. Cleared when the
// answers are sent (the done page calls clear) and when the tab closes.
(function () {
  var form = document.querySelector("form.questionnaire");
  var key = "ketaclinic-answers:" + window.location.pathname;
  if (document.querySelector("[data-questionnaire-done]")) {
    try { sessionStorage.removeItem(key); } catch (e) { /* storage off */ }
    return;
  }
  if (!form) return;
  var groups = form.querySelectorAll("fieldset.question");
  var text = document.getElementById("progress-text");
  var bar = document.getElementById("progress-bar");
  function update() {
    var answered = 0, saved = {};
    groups.forEach(function (group) {
      var checked = group.querySelector("input:checked");
      if (checked) { answered += 1; saved[checked.name] = checked.value; }
    });
    if (bar) bar.value = answered;
    if (text) text.textContent = answered + " of " + groups.length + " answered";
    try { sessionStorage.setItem(key, JSON.stringify(saved)); } catch (e) { /* storage off */ }
  }
  try {
    var saved = JSON.parse(sessionStorage.getItem(key) || "{}");
    Object.keys(saved).forEach(function (name) {
      var input = form.querySelector('input[name="' + name + '"][value="' + saved[name] + '"]');
      if (input && !form.querySelector('input[name="' + name + '"]:checked')) input.checked = true;
    });
  } catch (e) { /* storage off */ }
  form.addEventListener("change", update);
  update();
})();
