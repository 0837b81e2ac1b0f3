// Fill the browser's time zone, keep past dates out of the picker, and keep a job's page up to date.
(function () {
  "use strict";
  var tz = document.getElementById("timezone");
  if (tz) {
    var zone = "UTC";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* old browser */ }
    if (!tz.value) { tz.value = zone; }
    var label = document.getElementById("timezone-label");
    if (label) { label.textContent = tz.value; }
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
  var job = document.getElementById("job");
  if (job && (job.dataset.status === "queued" || job.dataset.status === "running")) {
    var render = function (data) {
      document.getElementById("job-status").textContent = data.status;
      document.getElementById("job-phase").textContent = data.phase;
      document.getElementById("job-delivered").textContent = data.delivered;
      var list = document.getElementById("job-events");
      list.textContent = "";
      (data.events || []).forEach(function (e) {
        var li = document.createElement("li");
        li.className = "event-" + e.level;
        li.textContent = e.at.substring(11, 19) + " UTC " + e.message;
        list.appendChild(li);
      });
      if (data.status === "done" || data.status === "failed") { window.location.reload(); return true; }
      return false;
    };
    var poll = function () {
      fetch(job.dataset.statusUrl, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (!data || !render(data)) { setTimeout(poll, 2000); } })
        .catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 2000);
  }
})();
