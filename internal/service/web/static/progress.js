// Live progress of a job page: follows the job's Server-Sent Events and
// updates the bar; without this script the page refreshes itself.
(function () {
  var el = document.getElementById("progress");
  if (!el || !window.EventSource) return;
  var state = el.dataset.state;
  if (state === "succeeded" || state === "failed" || state === "cancelled") return;
  var refresh = document.querySelector('meta[http-equiv="refresh"]');
  if (refresh) refresh.remove();
  var bar = el.querySelector("progress"), pct = el.querySelector(".percent"),
      st = el.querySelector(".state"), ph = el.querySelector(".phase"), cur = el.querySelector(".current");
  el.dataset.live = "1"; // followed by this script (the finished page, reloaded, has no data-live)
  var es = new EventSource("/api/v1/jobs/" + el.dataset.job + "/events");
  function show(state, p) {
    var percent = Math.round((p && p.percent) || 0);
    if (state === "succeeded") percent = 100;
    el.dataset.state = state; el.dataset.percent = percent; el.dataset.phase = (p && p.phase) || "";
    bar.value = percent; bar.textContent = percent + "%"; pct.textContent = percent + "%";
    st.textContent = state; ph.textContent = p && p.phase ? " · " + p.phase : "";
    cur.textContent = (p && p.current) || "";
  }
  es.addEventListener("progress", function (e) { var d = JSON.parse(e.data); show(d.state, d.progress); });
  es.addEventListener("end", function (e) {
    var j = JSON.parse(e.data); show(j.state, j.progress); es.close();
    location.reload(); // the finished page: result, error, undo
  });
})();
