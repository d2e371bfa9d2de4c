/* escrutinio dashboard: progressive enhancement only — every page works without it. */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "es";
  function T(es, en) { return lang === "es" ? es : en; }

  /* --- map: select an area by click, keyboard or name ----------------------------------- */
  var map = document.getElementById("map");
  var detail = document.getElementById("map-detail");
  function label(path) {
    var t = path.querySelector("title");
    return t ? t.textContent : "";
  }
  function select(path) {
    if (!path) { return; }
    var prev = map.querySelector("path.selected");
    if (prev) { prev.classList.remove("selected"); }
    path.classList.add("selected");
    if (path.parentNode) { path.parentNode.appendChild(path); }  // draw its outline on top
    if (detail) { detail.textContent = label(path); }
  }
  if (map) {
    map.addEventListener("click", function (e) {
      if (e.target && e.target.tagName.toLowerCase() === "path") { select(e.target); }
    });
    map.addEventListener("keydown", function (e) {
      var t = e.target;
      if (t && t.tagName.toLowerCase() === "path" && (e.key === "Enter" || e.key === " ")) {
        e.preventDefault(); select(t); t.focus();
      }
    });
    map.addEventListener("focusin", function (e) {
      var t = e.target;
      if (t && t.tagName.toLowerCase() === "path" && detail) { detail.textContent = label(t); }
    });
    var search = document.getElementById("unit-search");
    if (search) {
      var find = function () {
        var q = search.value.trim().toUpperCase();
        if (!q) { return; }
        var paths = map.querySelectorAll("path[data-name]");
        var hit = null;
        for (var i = 0; i < paths.length; i++) {
          if (paths[i].getAttribute("data-name").toUpperCase() === q) { hit = paths[i]; break; }
        }
        if (!hit) {
          for (var j = 0; j < paths.length; j++) {
            if (paths[j].getAttribute("data-name").toUpperCase().indexOf(q) === 0) { hit = paths[j]; break; }
          }
        }
        if (hit) { select(hit); }
        else if (detail) { detail.textContent = T("No se encontró «" + search.value + "».", "\u201C" + search.value + "\u201D was not found."); }
      };
      search.addEventListener("change", find);
      search.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); find(); } });
    }
  }

  /* --- phone: the section menu starts folded (without this script it is open) ----------- */
  var menu = document.getElementById("nav-menu");
  if (menu && window.matchMedia && window.matchMedia("(max-width: 40rem)").matches) {
    menu.removeAttribute("open");
  }

  /* --- replay: follow the clock unless paused ------------------------------------------- */
  var body = document.body;
  if (body.getAttribute("data-replay")) {
    var pause = document.getElementById("replay-pause");
    var paused = window.sessionStorage && sessionStorage.getItem("escrutinio-paused") === "1";
    var setPaused = function (v) {
      paused = v;
      if (pause) {
        pause.setAttribute("aria-pressed", v ? "true" : "false");
        pause.textContent = v ? T("Reanudar actualización", "Resume updates") : T("Pausar actualización", "Pause updates");
      }
      try { sessionStorage.setItem("escrutinio-paused", v ? "1" : "0"); } catch (e) { /* private mode */ }
    };
    setPaused(paused);
    if (pause) { pause.addEventListener("click", function () { setPaused(!paused); }); }
    var step = body.getAttribute("data-step");
    var every = Math.max(1, parseFloat(body.getAttribute("data-step-seconds") || "5"));
    var status = document.getElementById("replay-status");
    var poll = function () {
      fetch("/api/v1/replay", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
        if (!s.replay) { return; }
        if (status) { status.textContent = T("corte ", "cut ") + (s.step + 1) + " / " + s.n_steps + ", " + (s.as_of_label ? s.as_of_label[lang] : s.as_of.replace("T", " ").replace("Z", " UTC")); }
        if (String(s.step) !== step && body.getAttribute("data-home") && !paused) { window.location.reload(); }
      }).catch(function () { /* offline: keep the page as it is */ });
    };
    window.setInterval(poll, every * 1000);
  }

  /* The upload forms (observers' copies, quick-count reports) are plain HTML forms: the
     server answers with the page and the result, so they need no script. */
})();
