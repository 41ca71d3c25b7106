// Salus pages work without JavaScript; this file only adds conveniences.
//
// Password strength meter: every <input data-strength> gets a meter and a short verdict that
// follow what is typed. The password is checked by the server's own rules
// (POST /api/v1/password-check), with the name, email and birth date typed into the same form
// (or given as data-given-name, data-family-name, data-email on the input) counted as known to
// an attacker. Nothing is sent until typing pauses.
"use strict";

(function () {
  function personal(input, name) {
    var form = input.form;
    var field = form && form.elements.namedItem(name);
    if (field && typeof field.value === "string") {
      return field.value;
    }
    return input.getAttribute("data-" + name.replace("_", "-")) || "";
  }

  function attach(input) {
    var box = document.createElement("div");
    box.className = "strength";
    box.id = input.id + "-strength";
    box.setAttribute("aria-live", "polite");
    var meter = document.createElement("meter");
    meter.min = 0;
    meter.max = 4;
    meter.low = 2;
    meter.high = 3;
    meter.optimum = 4;
    meter.value = 0;
    meter.setAttribute("aria-hidden", "true");
    var text = document.createElement("span");
    box.appendChild(meter);
    box.appendChild(text);
    input.insertAdjacentElement("afterend", box);
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + box.id);
    box.hidden = true;

    var timer = null;
    var asked = 0;
    function check() {
      var password = input.value;
      if (password.length === 0) {
        box.hidden = true;
        return;
      }
      var mine = ++asked;
      fetch("/api/v1/password-check", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "omit",
        body: JSON.stringify({
          password: password,
          given_name: personal(input, "given_name"),
          family_name: personal(input, "family_name"),
          email: personal(input, "email"),
          birth_date: personal(input, "birth_date"),
        }),
      })
        .then(function (r) {
          return r.ok ? r.json() : null;
        })
        .then(function (c) {
          if (!c || mine !== asked) {
            return;
          }
          box.hidden = false;
          meter.value = c.score;
          var words = "Strength: " + c.strength + ".";
          if (!c.acceptable && c.problem) {
            words += " " + c.problem;
          } else if (c.warning) {
            words += " " + c.warning;
          } else if (c.suggestions && c.suggestions.length > 0) {
            words += " " + c.suggestions[0];
          }
          text.textContent = words;
          box.className = "strength " + (c.acceptable ? "strength-" + c.score : "strength-refused");
        })
        .catch(function () {
          box.hidden = true;
        });
    }
    input.addEventListener("input", function () {
      if (timer) {
        clearTimeout(timer);
      }
      timer = setTimeout(check, 300);
    });
  }

  document.querySelectorAll("input[data-strength]").forEach(attach);
})();

// Print: every record page has a Print button (hidden until this script shows it, since it
// needs script to work; the browser's own Print prints the same). Sensitive records behind a
// notice are opened for printing and closed again afterwards.
(function () {
  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      window.print();
    });
  });
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details.sensitive:not([open])").forEach(function (d) {
      d.open = true;
      opened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) {
      d.open = false;
    });
    opened = [];
  });
})();
