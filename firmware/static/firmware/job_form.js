// The admin's "Add job" page: show only the section of what the job runs (firmware, template or
// own document), and count the devices the chosen targets reach when the operator asks (the
// count costs a query over the selection, so never on each keystroke).
// The admin loads this script in <head>: start once the page is parsed.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("job_form");
  if (!form) {
    return;
  }

  function chosenRun() {
    var checked = form.querySelector('input[name="run"]:checked');
    return checked ? checked.value : "";
  }

  function showChosenSection() {
    var run = chosenRun();
    form.querySelectorAll("fieldset.run-section").forEach(function (section) {
      section.hidden = run !== "" && !section.classList.contains("run-" + run);
    });
  }
  form.querySelectorAll('input[name="run"]').forEach(function (radio) {
    radio.addEventListener("change", showChosenSection);
  });
  showChosenSection();

  var button = document.getElementById("reach-button");
  var result = document.getElementById("reach-result");
  if (!button || !result || !window.fetch) {
    return;
  }
  button.addEventListener("click", function () {
    var query = new URLSearchParams();
    ["devices", "groups"].forEach(function (name) {
      var select = form.querySelector('select[name="' + name + '"]');
      Array.prototype.forEach.call(select ? select.selectedOptions : [], function (option) {
        query.append(name, option.value);
      });
    });
    var firmware = form.querySelector('select[name="firmware"]');
    if (chosenRun() === "firmware" && firmware && firmware.value) {
      query.append("firmware", firmware.value);
    }
    result.textContent = "counting…";
    fetch(button.dataset.url + "?" + query.toString(), { credentials: "same-origin" })
      .then(function (response) {
        return response.json();
      })
      .then(function (answer) {
        result.textContent = answer.message;
      })
      .catch(function () {
        result.textContent = "Could not count; try again.";
      });
  });
});
