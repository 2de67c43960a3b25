/* The interview form: checks what the auditor entered, puts it in the device's queue (outbox.js),
 * and clears the form for the next customer. Without JavaScript the form posts as a normal page.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-entry]");
  var outbox = window.AuditOutbox;
  if (!form || !outbox || !outbox.available) {
    return;
  }
  var texts = form.dataset;
  var idField = form.querySelector('input[name="interview_id"]');
  var message = document.getElementById("entry-message");
  var panel = document.querySelector("[data-outbox]");
  var items = Array.prototype.map.call(form.querySelectorAll("fieldset[data-item]"), function (fieldset) {
    return fieldset.dataset.item;
  });
  var respondentPattern = new RegExp(texts.respondentPattern);

  /* A version 4 UUID made on the device; it identifies the interview however often it is sent. */
  function newInterviewId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  /* A page from the cache carries an old server-made UUID: every fresh form gets its own. */
  if (texts.keepId !== "true") {
    idField.value = newInterviewId();
  }

  function show(text, kind) {
    message.textContent = text;
    message.className = "flash flash-" + kind;
    message.hidden = !text;
  }

  function errorSlot(name) {
    return form.querySelector('[data-error-for="' + name + '"]');
  }

  function holder(name) {
    if (name === "customer_group") {
      return form.querySelector("fieldset.group");
    }
    if (name === "respondent_id") {
      return form.querySelector(".respondent");
    }
    return form.querySelector('fieldset[data-item="' + name + '"]');
  }

  function setError(name, text) {
    var slot = errorSlot(name);
    var box = holder(name);
    if (slot) {
      slot.textContent = text || "";
      slot.hidden = !text;
    }
    if (box) {
      box.classList.toggle("has-error", Boolean(text));
    }
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      slot.textContent = "";
      slot.hidden = true;
    });
    form.querySelectorAll(".has-error").forEach(function (box) { box.classList.remove("has-error"); });
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.hidden = true;
    }
  }

  function collect() {
    var data = new FormData(form);
    var answers = {};
    items.forEach(function (code) {
      var value = data.get(code);
      if (value !== null) {
        answers[code] = value === "na" ? null : Number(value);
      }
    });
    return {
      interview_id: idField.value,
      customer_group: data.get("customer_group") || "",
      respondent_id: String(data.get("respondent_id") || "").trim(),
      answers: answers,
    };
  }

  /* The same rules the server applies, so a bad entry is caught before it waits in the queue. */
  function check(payload) {
    var errors = {};
    if (payload.customer_group !== "household" && payload.customer_group !== "business") {
      errors.customer_group = texts.textRequiredGroup;
    }
    if (!payload.respondent_id) {
      errors.respondent_id = texts.textRequiredRespondent;
    } else if (!respondentPattern.test(payload.respondent_id)) {
      errors.respondent_id = texts.textBadRespondent;
    }
    items.forEach(function (code) {
      if (!(code in payload.answers)) {
        errors[code] = texts.textRequiredItem;
      }
    });
    return errors;
  }

  function showErrors(errors) {
    var first = null;
    Object.keys(errors).forEach(function (name) {
      setError(name, errors[name]);
      var box = holder(name);
      if (box && !first) {
        first = box;
      }
    });
    if (first) {
      first.scrollIntoView({ block: "center" });
      var focusable = first.querySelector("input");
      if (focusable) {
        focusable.focus({ preventScroll: true });
      }
    }
  }

  function fill(entry) {
    form.reset();
    clearErrors();
    var payload = entry.payload;
    idField.value = entry.errors && entry.errors.interview_id ? newInterviewId() : entry.interview_id;
    form.querySelectorAll('input[name="customer_group"]').forEach(function (radio) {
      radio.checked = radio.value === payload.customer_group;
    });
    form.querySelector('input[name="respondent_id"]').value = payload.respondent_id;
    Object.keys(payload.answers).forEach(function (code) {
      var value = payload.answers[code] === null ? "na" : String(payload.answers[code]);
      form.querySelectorAll('input[name="' + code + '"]').forEach(function (radio) {
        radio.checked = radio.value === value;
      });
    });
    show(texts.textFixing, "error");
    if (entry.errors) {
      showErrors(entry.errors);
    }
    if (idField.value !== entry.interview_id) {
      fixing = entry.interview_id;
    }
  }

  /* The UUID of a refused entry being replaced (its UUID was taken), removed once the new one is saved. */
  var fixing = null;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var payload = collect();
    var errors = check(payload);
    if (Object.keys(errors).length) {
      show(texts.textCheck, "error");
      showErrors(errors);
      return;
    }
    var replaced = fixing;
    outbox.save({
      interview_id: payload.interview_id,
      assignment: Number(texts.assignment),
      url: texts.postUrl,
      entry_url: panel ? panel.dataset.entryUrl : window.location.pathname,
      payload: payload,
    }).then(function () {
      fixing = null;
      if (replaced) {
        return outbox.discard(replaced);
      }
      return null;
    }).then(function () {
      form.reset();
      idField.value = newInterviewId();
      show(texts.textSaved, "success");
      window.scrollTo(0, 0);
      message.focus();
    }).catch(function () {
      /* The device cannot store it: send the form the ordinary way instead. */
      form.submit();
    });
  });

  form.addEventListener("change", function (event) {
    var name = event.target && event.target.name;
    if (name) {
      setError(name, "");
    }
  });

  outbox.onFix(function (entry) {
    if (String(entry.assignment) !== texts.assignment) {
      return false;
    }
    fill(entry);
    return true;
  });

  var match = /^#fix=(.+)$/.exec(window.location.hash);
  if (match) {
    outbox.get(decodeURIComponent(match[1])).then(function (entry) {
      if (entry && String(entry.assignment) === texts.assignment) {
        fill(entry);
      }
    }).catch(function () {});
  }
})();
