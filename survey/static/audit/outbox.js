/* The interviews waiting on this device (IndexedDB), sent to the server when there is a connection.
 *
 * Every interview entered on the form goes through this queue, online or not: it is stored on
 * the device first, then sent to /audit/assignments/<id>/interviews.json with its device-made
 * UUID, so sending it twice never stores it twice. Sending starts on page load, when the
 * connection comes back (the "online" event), every RETRY_MS while something waits, and from
 * the "Send now" button. Entries the server refuses stay visible with the reason until the
 * auditor fixes or discards them. Plain JavaScript, no inline code (the CSP forbids it).
 */
(function () {
  "use strict";

  var DB_NAME = "evnnpc-audit";
  var DB_VERSION = 1;
  var STORE = "outbox";
  var RETRY_MS = 20000;
  var REQUEST_TIMEOUT_MS = 20000;
  /* Sent entries hold customers' account numbers: keep them only long enough to show what was sent. */
  var KEEP_SENT_MS = 2 * 24 * 3600 * 1000;
  var SHOW_SENT = 10;

  var config = document.querySelector('meta[name="audit-config"]');
  var panel = document.querySelector("[data-outbox]");
  var texts = panel ? panel.dataset : {};
  var available = typeof window.indexedDB !== "undefined" && window.Promise && window.fetch && config;
  var dbPromise = null;
  var flushing = false;
  var loginNeeded = false;
  var serverTrouble = false;
  var listeners = [];

  function currentUser() {
    return config ? config.dataset.user : "";
  }

  /* --- IndexedDB, wrapped in promises ------------------------------------------------------ */

  function openDb() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var request = window.indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = function () {
          var db = request.result;
          if (!db.objectStoreNames.contains(STORE)) {
            db.createObjectStore(STORE, { keyPath: "interview_id" });
          }
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
        request.onblocked = function () { reject(new Error("IndexedDB blocked")); };
      });
    }
    return dbPromise;
  }

  function withStore(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(STORE, mode);
        var store = transaction.objectStore(STORE);
        var request = action(store);
        transaction.oncomplete = function () { resolve(request ? request.result : undefined); };
        transaction.onerror = function () { reject(transaction.error); };
        transaction.onabort = function () { reject(transaction.error); };
      });
    });
  }

  function allEntries() {
    return withStore("readonly", function (store) { return store.getAll(); }).then(function (entries) {
      return (entries || []).filter(function (entry) { return entry.user === currentUser(); });
    });
  }

  function getEntry(id) {
    return withStore("readonly", function (store) { return store.get(id); });
  }

  function putEntry(entry) {
    return withStore("readwrite", function (store) { return store.put(entry); });
  }

  function deleteEntry(id) {
    return withStore("readwrite", function (store) { return store.delete(id); });
  }

  /* --- Sending ------------------------------------------------------------------------------ */

  function timedFetch(url, options) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var settings = Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {});
    if (controller) {
      settings.signal = controller.signal;
    }
    return fetch(url, settings).finally(function () {
      if (timer) {
        clearTimeout(timer);
      }
    });
  }

  function readJson(response) {
    return response.json().catch(function () { return {}; });
  }

  /* The page may come from the service worker's cache with an old token: ask for a fresh one. */
  function freshToken() {
    return timedFetch(config.dataset.csrfUrl, { headers: { Accept: "application/json" } }).then(function (response) {
      if (response.status === 401) {
        loginNeeded = true;
        return null;
      }
      if (!response.ok) {
        throw new Error("token " + response.status);
      }
      return readJson(response).then(function (body) { return body.csrf_token || null; });
    });
  }

  function postEntry(entry, token) {
    return timedFetch(entry.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
      body: JSON.stringify(entry.payload),
    });
  }

  function messagesOf(body) {
    if (body && body.errors) {
      return body.errors;
    }
    return { assignment: (body && body.error) || String(texts.textStatusError || "") };
  }

  /* Send one entry; resolve "sent", "refused", "login" or "later". */
  function sendOne(entry, token) {
    return postEntry(entry, token).then(function (response) {
      return readJson(response).then(function (body) {
        if (response.status === 400 && body.csrf) {
          return freshToken().then(function (again) {
            return again ? postEntry(entry, again).then(function (second) {
              return readJson(second).then(function (secondBody) { return outcome(entry, second, secondBody); });
            }) : "login";
          });
        }
        return outcome(entry, response, body);
      });
    });
  }

  function outcome(entry, response, body) {
    if (response.status === 200 || response.status === 201) {
      entry.status = "sent";
      entry.sent_at = Date.now();
      entry.errors = null;
      entry.server = body.interview || null;
      showProgress(entry.assignment, body.progress);
      return putEntry(entry).then(function () { return "sent"; });
    }
    if (response.status === 401) {
      return "login";
    }
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      entry.status = "error";
      entry.errors = messagesOf(body);
      return putEntry(entry).then(function () { return "refused"; });
    }
    return "later";
  }

  /* The server's count for the assignment, shown on the page's progress bar. */
  function showProgress(assignment, progress) {
    if (!progress) {
      return;
    }
    document.querySelectorAll('.audit-progress[data-assignment="' + assignment + '"]').forEach(function (box) {
      var bar = box.querySelector("progress");
      var text = box.querySelector(".audit-progress-text");
      bar.max = Math.max(progress.quota, 1);
      bar.value = Math.min(progress.interviews, progress.quota);
      text.textContent = String(box.dataset.text || "").replace("{n}", progress.interviews)
        .replace("{quota}", progress.quota);
    });
  }

  function flush() {
    if (!available || flushing) {
      return Promise.resolve();
    }
    flushing = true;
    render(true);
    return allEntries()
      .then(function (entries) {
        var waiting = entries.filter(function (entry) { return entry.status === "waiting"; });
        if (!waiting.length || navigator.onLine === false) {
          return null;
        }
        return freshToken().then(function (token) {
          if (!token) {
            return null;
          }
          loginNeeded = false;
          serverTrouble = false;
          /* One at a time, in the order entered; stop at the first sign of a bad connection. */
          return waiting.reduce(function (chain, entry) {
            return chain.then(function (stop) {
              if (stop) {
                return true;
              }
              return sendOne(entry, token).then(function (result) {
                if (result === "login") {
                  loginNeeded = true;
                  return true;
                }
                if (result === "later") {
                  serverTrouble = true;
                  return true;
                }
                return false;
              });
            });
          }, Promise.resolve(false));
        });
      })
      .catch(function () {
        serverTrouble = navigator.onLine !== false;
      })
      .then(function () {
        flushing = false;
        return render(false);
      });
  }

  function forgetOldSent() {
    var limit = Date.now() - KEEP_SENT_MS;
    return allEntries().then(function (entries) {
      return Promise.all(entries.filter(function (entry) {
        return entry.status === "sent" && entry.sent_at < limit;
      }).map(function (entry) { return deleteEntry(entry.interview_id); }));
    });
  }

  /* --- The panel ---------------------------------------------------------------------------- */

  function count(template, n) {
    return String(template || "").replace("{n}", String(n));
  }

  function plural(one, many, n) {
    return n === 1 ? count(one, n) : count(many, n);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function inScope(entry) {
    var assignment = panel && panel.dataset.assignment;
    return !assignment || String(entry.assignment) === assignment;
  }

  function describe(entry) {
    var group = entry.payload.customer_group === "business" ? texts.textBusiness : texts.textHousehold;
    var when = new Date(entry.created_at).toLocaleString(document.documentElement.lang || undefined, {
      hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit",
    });
    return entry.payload.respondent_id + " · " + group + " · " + when;
  }

  function entryItem(entry) {
    var item = element("li", "outbox-entry outbox-" + entry.status);
    item.dataset.interviewId = entry.interview_id;
    item.dataset.status = entry.status;
    var label = { waiting: texts.textStatusWaiting, sent: texts.textStatusSent, error: texts.textStatusError };
    item.appendChild(element("span", "badge outbox-badge", label[entry.status] || entry.status));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(element("span", "outbox-what", describe(entry)));
    if (entry.status === "error" && entry.errors) {
      var reasons = element("ul", "outbox-errors");
      Object.keys(entry.errors).forEach(function (field) {
        reasons.appendChild(element("li", "field-error", entry.errors[field]));
      });
      item.appendChild(reasons);
      var actions = element("div", "outbox-actions");
      var fix = element("button", "secondary outbox-fix", texts.textFix);
      fix.type = "button";
      fix.addEventListener("click", function () { requestFix(entry); });
      var discard = element("button", "link outbox-discard", texts.textDiscard);
      discard.type = "button";
      discard.addEventListener("click", function () {
        if (window.confirm(texts.textConfirmDiscard)) {
          deleteEntry(entry.interview_id).then(function () { render(false); });
        }
      });
      actions.appendChild(fix);
      actions.appendChild(discard);
      item.appendChild(actions);
    }
    return item;
  }

  function requestFix(entry) {
    var handled = listeners.some(function (listener) { return listener(entry) === true; });
    if (!handled && entry.entry_url) {
      window.location.href = entry.entry_url + "#fix=" + encodeURIComponent(entry.interview_id);
    }
  }

  function render(sending) {
    if (!panel || !available) {
      return Promise.resolve();
    }
    return allEntries().then(function (entries) {
      var mine = entries.filter(inScope);
      var waiting = mine.filter(function (entry) { return entry.status === "waiting"; });
      var failed = mine.filter(function (entry) { return entry.status === "error"; });
      var sent = mine.filter(function (entry) { return entry.status === "sent"; });
      panel.hidden = false;

      var connection = document.getElementById("outbox-connection");
      var offline = navigator.onLine === false;
      connection.textContent = offline ? texts.textOffline : texts.textOnline;
      connection.dataset.online = offline ? "false" : "true";

      var status = document.getElementById("outbox-status");
      var lines = [];
      if (sending && waiting.length) {
        lines.push(texts.textSending);
      }
      lines.push(waiting.length ? plural(texts.textWaitingOne, texts.textWaitingMany, waiting.length) : texts.textNothing);
      if (failed.length) {
        lines.push(plural(texts.textFailedOne, texts.textFailedMany, failed.length));
      }
      if (sent.length) {
        lines.push(plural(texts.textSentOne, texts.textSentMany, sent.length));
      }
      if (loginNeeded && waiting.length) {
        lines.push(texts.textLogin);
      } else if (serverTrouble && waiting.length && !offline) {
        lines.push(texts.textRetry);
      }
      status.textContent = "";
      lines.forEach(function (line) { status.appendChild(element("span", "outbox-line", line)); });
      status.dataset.waiting = String(waiting.length);
      status.dataset.failed = String(failed.length);
      status.dataset.sent = String(sent.length);

      var list = document.getElementById("outbox-list");
      list.textContent = "";
      var shown = waiting.concat(failed).concat(sent.sort(function (a, b) { return b.sent_at - a.sent_at; })
        .slice(0, SHOW_SENT));
      shown.forEach(function (entry) { list.appendChild(entryItem(entry)); });

      var sendButton = document.getElementById("outbox-send");
      sendButton.hidden = !waiting.length;
      sendButton.disabled = flushing;

      blockSubmit(waiting.length + failed.length);
    });
  }

  /* Submitting locks the assignment: not while interviews of it still wait on this device. */
  function blockSubmit(pending) {
    var form = document.querySelector("form[data-submit-assignment]");
    if (!form) {
      return;
    }
    var button = form.querySelector("button[type=submit]");
    var note = document.getElementById("submit-blocked");
    button.disabled = pending > 0;
    if (note) {
      note.hidden = pending === 0;
      note.textContent = pending ? texts.textBlocked : "";
    }
  }

  /* --- Start-up ----------------------------------------------------------------------------- */

  function registerServiceWorker() {
    if (!config || !("serviceWorker" in navigator) || !window.isSecureContext) {
      return;
    }
    navigator.serviceWorker.register(config.dataset.swUrl, { scope: config.dataset.swScope }).catch(function () {
      /* Without a service worker the form still queues; it just cannot open without a connection. */
    });
  }

  /* Logging out: forget the pages the service worker kept and the list of sent interviews. */
  function forgetOnLogout() {
    document.querySelectorAll('form[action$="/logout"]').forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.forgotten === "true") {
          return;
        }
        event.preventDefault();
        if (navigator.serviceWorker && navigator.serviceWorker.controller) {
          navigator.serviceWorker.controller.postMessage({ type: "forget-pages" });
        }
        var sentGone = available ? allEntries().then(function (entries) {
          return Promise.all(entries.filter(function (entry) { return entry.status === "sent"; })
            .map(function (entry) { return deleteEntry(entry.interview_id); }));
        }) : Promise.resolve();
        var timeout = new Promise(function (resolve) { setTimeout(resolve, 1500); });
        Promise.race([sentGone, timeout]).catch(function () {}).then(function () {
          form.dataset.forgotten = "true";
          form.submit();
        });
      });
    });
  }

  window.AuditOutbox = {
    available: Boolean(available),
    /* Put an interview in the queue (replacing one with the same UUID) and try to send it. */
    save: function (entry) {
      entry.user = currentUser();
      entry.status = "waiting";
      entry.errors = null;
      entry.created_at = entry.created_at || Date.now();
      return putEntry(entry).then(function () {
        render(false);
        flush();
      });
    },
    get: getEntry,
    discard: function (id) {
      return deleteEntry(id).then(function () { return render(false); });
    },
    flush: flush,
    render: render,
    /* listener(entry) returns true when it opened the entry for fixing on this page. */
    onFix: function (listener) { listeners.push(listener); },
  };

  registerServiceWorker();
  forgetOnLogout();
  if (!available) {
    return;
  }
  if (panel) {
    document.getElementById("outbox-send").addEventListener("click", function () {
      loginNeeded = false;
      flush();
    });
  }
  window.addEventListener("online", function () { flush(); });
  window.addEventListener("offline", function () { render(false); });
  setInterval(function () {
    allEntries().then(function (entries) {
      if (entries.some(function (entry) { return entry.status === "waiting"; })) {
        flush();
      }
    }).catch(function () {});
  }, RETRY_MS);
  forgetOldSent().catch(function () {}).then(function () { return render(false); }).then(flush).catch(function () {});
})();
