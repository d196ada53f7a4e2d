// The firmware upload form sends its file with a progress bar: images are large, and a plain
// form post shows nothing until the whole file has arrived.
// The admin loads this script in <head>, before the form exists: start once the page is parsed.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var form = document.getElementById("firmwareversion_form");
  if (!form || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  form.addEventListener("submit", function (event) {
    var input = form.querySelector('input[type="file"]');
    if (!input || !input.files.length) {
      return; // a URL-only registration: an ordinary post
    }
    event.preventDefault();
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var label = document.createElement("span");
    label.textContent = " uploading…";
    var row = form.querySelector(".submit-row") || form;
    row.prepend(bar, label);
    var request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) {
        bar.value = (100 * progress.loaded) / progress.total;
        label.textContent = " " + Math.floor(bar.value) + " % uploaded";
      }
    });
    request.upload.addEventListener("load", function () {
      label.textContent = " checking and signing…";
    });
    request.addEventListener("load", function () {
      // Show the admin's answer as it came: the list after a save (its "added" message
      // included: loading the page again would lose it), or the form with its errors.
      if (request.responseURL && request.responseURL !== window.location.href) {
        window.history.replaceState(null, "", request.responseURL);
      }
      document.open();
      document.write(request.responseText);
      document.close();
    });
    request.addEventListener("error", function () {
      label.textContent = " the upload failed; try again.";
    });
    request.send(new FormData(form, event.submitter));
  });
});
