// The form: the detected time zone chosen, past dates kept out of the picker, the error summary focused; the job
// page kept up to date (progress, counts, time left, log); the jobs this browser submitted, in its local storage.
(function () {
  "use strict";
  var RECENT_KEY = "aid.recent-jobs";
  var RECENT_MAX = 10;

  var readRecent = function () {
    try { return JSON.parse(window.localStorage.getItem(RECENT_KEY) || "[]") || []; } catch (e) { return []; }
  };
  var writeRecent = function (list) {
    try { window.localStorage.setItem(RECENT_KEY, JSON.stringify(list.slice(0, RECENT_MAX))); } catch (e) { /* full or off */ }
  };

  var tz = document.getElementById("timezone");
  if (tz && !tz.dataset.chosen) {
    var zone = "UTC";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* old browser */ }
    for (var i = 0; i < tz.options.length; i++) {
      if (tz.options[i].value === zone) { tz.selectedIndex = i; break; }
    }
  }
  var date = document.getElementById("date");
  var time = document.getElementById("time");
  if (date) {
    var now = new Date();
    var pad = function (n) { return String(n).padStart(2, "0"); };
    var today = now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
    date.min = today;  // the server checks again: it is the authority
    if (!date.value) { date.value = today; }
    if (time && !time.value) {  // the next whole minute: "as soon as possible"
      var soon = new Date(now.getTime() + 60000);
      time.value = pad(soon.getHours()) + ":" + pad(soon.getMinutes());
    }
  }
  var form = document.getElementById("job-form");
  if (form) {  // two modes: search the web, or crawl a website; the fields of the other mode are hidden
    var modes = form.querySelectorAll("input[name=mode]");
    var showMode = function () {
      for (var m = 0; m < modes.length; m++) {
        if (modes[m].checked) { form.dataset.mode = modes[m].value; }
      }
    };
    for (var k = 0; k < modes.length; k++) { modes[k].addEventListener("change", showMode); }
    showMode();
  }
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  var recent = document.getElementById("recent-jobs");
  if (recent) {
    var list = readRecent();
    var ul = document.getElementById("recent-jobs-list");
    list.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "/jobs/" + encodeURIComponent(item.id);
      a.textContent = item.query;
      var state = document.createElement("span");
      state.className = "recent-status";
      state.textContent = " · …";
      li.appendChild(a);
      li.appendChild(state);
      ul.appendChild(li);
      fetch("/api/jobs/" + encodeURIComponent(item.id), { headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (r.status === 404) {  // deleted after its retention time: forget it
            writeRecent(readRecent().filter(function (x) { return x.id !== item.id; }));
            li.remove();
            if (!ul.children.length) { recent.hidden = true; }
            return null;
          }
          return r.ok ? r.json() : null;
        })
        .then(function (data) { if (data) { state.textContent = " · " + data.status; } })
        .catch(function () { state.textContent = ""; });
    });
    recent.hidden = list.length === 0;
  }

  var job = document.getElementById("job");
  if (!job) { return; }
  if (job.dataset.submitted) {
    var kept = readRecent().filter(function (x) { return x.id !== job.dataset.jobId; });
    kept.unshift({ id: job.dataset.jobId, query: job.dataset.query, at: new Date().toISOString() });
    writeRecent(kept);
  }
  var active = ["unconfirmed", "queued", "running"];
  if (active.indexOf(job.dataset.status) < 0) { return; }
  var phases = JSON.parse(job.dataset.phases || "{}");
  var said = "";
  var words = function (phase) {
    var text = phases[phase] || phase;
    return text.charAt(0).toUpperCase() + text.slice(1);
  };
  var duration = function (seconds) {
    if (seconds < 60) { return "about " + seconds + " s left"; }
    return "about " + Math.round(seconds / 60) + " min left";
  };
  var render = function (data) {
    var p = data.progress || {};
    var counts = p.delivered + " of " + p.wanted + " images" + (p.candidates ? " from " + p.candidates + " image links" : "");
    var line = words(p.phase || data.phase) + " · " + counts;
    if (line !== said) {  // the live region announces only real changes
      said = line;
      document.getElementById("job-status").textContent = words(p.phase || data.phase);
      document.getElementById("job-counts").textContent = counts;
    }
    document.getElementById("job-eta").textContent = p.eta_seconds ? "· " + duration(p.eta_seconds) : "";
    var bar = document.getElementById("job-progress");
    bar.max = p.wanted || 1;
    bar.value = p.delivered || 0;
    bar.textContent = (p.delivered || 0) + " of " + (p.wanted || 0);
    var events = document.getElementById("job-events");
    events.textContent = "";
    (data.events || []).forEach(function (e) {
      var li = document.createElement("li");
      li.className = "event-" + e.level;
      var t = document.createElement("time");
      t.dateTime = e.at;
      t.textContent = e.time;
      li.appendChild(t);
      li.appendChild(document.createTextNode(" " + e.message));
      events.appendChild(li);
    });
    if (data.status !== job.dataset.status) { window.location.reload(); return true; }  // what happens next changed
    return false;
  };
  var poll = function () {
    fetch(job.dataset.statusUrl, { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (!data || !render(data)) { setTimeout(poll, 1000); } })
      .catch(function () { setTimeout(poll, 5000); });
  };
  setTimeout(poll, 1000);
})();
