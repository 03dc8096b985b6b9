/* The café at a glance: every server as a cell coloured by verdict, grouped by a label. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var VERDICTS = ["mismatch", "unreachable", "auth_failed", "dbc_path_broken", "unsupported",
                  "transitioning", "expected_off", "ok", "unknown"];
  var POLL_MS = 5000;
  var DATA_URL = "/ui/api/grid";

  var state = {servers: [], etag: null, selected: new Set(), verdicts: new Set(),
               q: "", group: "row", lastOk: 0, timer: null};

  var root = document.getElementById("grid");
  var summary = document.getElementById("summary");
  var search = document.getElementById("search");
  var groupBy = document.getElementById("group-by");
  var labelPick = document.getElementById("label-pick");
  var selCount = document.getElementById("sel-count");
  var actBtn = document.getElementById("act");
  var live = document.getElementById("live");

  function readQuery() {
    var p = new URLSearchParams(location.search);
    state.q = p.get("q") || "";
    state.group = p.get("group") || "row";
    (p.get("verdict") || "").split(",").filter(Boolean).forEach(function (v) { state.verdicts.add(v); });
    search.value = state.q;
    groupBy.value = state.group;
  }

  function writeQuery() {
    var p = new URLSearchParams(location.search);
    if (state.q) p.set("q", state.q); else p.delete("q");
    if (state.group !== "row") p.set("group", state.group); else p.delete("group");
    if (state.verdicts.size) p.set("verdict", Array.from(state.verdicts).join(",")); else p.delete("verdict");
    var qs = p.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
  }

  function haystack(s) {
    var labels = Object.keys(s.l || {}).map(function (k) { return k + "=" + s.l[k]; }).join(" ");
    return [s.u, s.ip, s.d, labels, s.n || ""].join(" ").toLowerCase();
  }

  function visible() {
    var q = state.q.trim().toLowerCase();
    return state.servers.filter(function (s) {
      if (state.verdicts.size && !state.verdicts.has(s.v)) return false;
      return !q || s.h.indexOf(q) >= 0;
    });
  }

  function naturalCompare(a, b) {
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: "base"});
  }

  function groups(list) {
    var byKey = new Map();
    list.forEach(function (s) {
      var key = state.group === "none" ? "" : ((s.l || {})[state.group] || "");
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key).push(s);
    });
    var keys = Array.from(byKey.keys()).sort(function (a, b) {
      if (a === "") return 1;
      if (b === "") return -1;
      return naturalCompare(a, b);
    });
    return keys.map(function (k) { return [k, byKey.get(k)]; });
  }

  function renderSummary() {
    var counts = {};
    state.servers.forEach(function (s) { counts[s.v] = (counts[s.v] || 0) + 1; });
    BM.clear(summary);
    var all = el("button", {type: "button", class: "chip" + (state.verdicts.size ? "" : " active"),
      "data-verdict": "", onclick: function () { state.verdicts.clear(); changed(); }},
      [el("span", {text: t("ui.all")}), el("span", {class: "count", text: String(state.servers.length)})]);
    summary.appendChild(all);
    VERDICTS.forEach(function (v) {
      var n = counts[v] || 0;
      if (!n && !state.verdicts.has(v) && (v === "unknown" || v === "unsupported")) return;
      summary.appendChild(el("button", {type: "button", "data-verdict": v,
        class: "chip" + (state.verdicts.has(v) ? " active" : "") + (n ? "" : " zero"),
        title: t("verdict_help." + v), onclick: function () {
          if (state.verdicts.has(v)) state.verdicts.delete(v); else state.verdicts.add(v);
          changed();
        }}, [el("span", {class: "dot v-" + v}), el("span", {text: BM.verdictLabel(v)}),
             el("span", {class: "count", text: String(n)})]));
    });
  }

  function cell(s) {
    var dl = s.dl ? BM.deeplinkState(s.dl.f, s.dl.res, s.dl.rot, s.dl.dup) : BM.deeplinkState("unknown");
    var power = s.p || "unknown";
    var boot = s.b ? BM.bootLabel(s.b) + (s.bp ? " · " + t("bootdev.persistent") : "") : t("ui.none");
    var pick = el("input", {type: "checkbox", class: "pick", "aria-label": t("ui.select"),
      checked: state.selected.has(s.u), onclick: function (e) { e.stopPropagation(); },
      onchange: function (e) { toggle(s.u, e.target.checked); }});
    var title = s.d ? s.u + " — " + s.d : s.u;
    return el("a", {class: "cell v-" + s.v + (state.selected.has(s.u) ? " selected" : ""),
      href: "/ui/servers/" + encodeURIComponent(s.u), "data-uuid": s.u, "data-verdict": s.v,
      "data-power": power, title: title}, [
      el("div", {class: "top"}, [pick, el("span", {class: "name", text: s.u}),
        el("span", {class: "badge v-" + s.v, text: BM.verdictLabel(s.v)})]),
      el("div", {class: "line"}, [el("span", {class: "pw-" + power, text: BM.powerLabel(s.p)}),
        " · " + t("ui.boot_short") + " " + boot]),
      el("div", {class: "line small", text: t("ui.checked_ago", {ago: BM.ago(s.t)})}),
      el("div", {class: "line small"}, ["DeepLink ", el("span", {class: "dl-" + dl[0], text: dl[1]})])
    ]);
  }

  function groupTitle(key) {
    if (state.group === "none") return t("ui.all_servers");
    if (key === "") return t("ui.no_label", {label: t("ui." + state.group)});
    return t("ui." + state.group) + " " + key;
  }

  function renderGrid() {
    var list = visible();
    var frag = document.createDocumentFragment();
    if (!list.length) {
      frag.appendChild(el("div", {class: "empty", text: state.servers.length ? t("cli.no_servers") : t("ui.no_servers_yet")}));
    }
    groups(list).forEach(function (pair) {
      var members = pair[1];
      var all = members.every(function (s) { return state.selected.has(s.u); });
      var pickGroup = el("input", {type: "checkbox", checked: all, "aria-label": t("ui.select_group"),
        onchange: function (e) {
          members.forEach(function (s) { toggle(s.u, e.target.checked, true); });
          render();
        }});
      frag.appendChild(el("section", {class: "group", "data-group": pair[0]}, [
        el("div", {class: "group-head"}, [pickGroup, el("span", {text: groupTitle(pair[0])}),
          el("span", {class: "n", text: t("ui.n_servers", {count: members.length})})]),
        el("div", {class: "cells"}, members.map(cell))]));
    });
    BM.clear(root);
    root.appendChild(frag);
  }

  function renderSelection() {
    selCount.textContent = t("ui.selected", {count: state.selected.size});
    actBtn.disabled = !BM.canAct || state.selected.size === 0;
    document.getElementById("sel-clear").disabled = state.selected.size === 0;
  }

  function renderLabels() {
    var seen = new Set();
    state.servers.forEach(function (s) {
      Object.keys(s.l || {}).forEach(function (k) { seen.add(k + "=" + s.l[k]); });
    });
    var current = Array.from(labelPick.options).slice(1).map(function (o) { return o.value; }).join("\n");
    var wanted = Array.from(seen).sort(naturalCompare);
    if (current === wanted.join("\n")) return;
    while (labelPick.options.length > 1) labelPick.remove(1);
    wanted.forEach(function (lv) { labelPick.appendChild(el("option", {value: lv, text: lv})); });
  }

  function render() {
    renderSummary();
    renderGrid();
    renderSelection();
  }

  function toggle(uuid, on, quiet) {
    if (on) state.selected.add(uuid); else state.selected.delete(uuid);
    if (!quiet) {
      var node = root.querySelector('.cell[data-uuid="' + CSS.escape(uuid) + '"]');
      if (node) node.classList.toggle("selected", on);
      renderSelection();
    }
  }

  function changed() {
    writeQuery();
    render();
  }

  function accept(data) {
    var known = new Set();
    data.servers.forEach(function (s) { s.h = haystack(s); known.add(s.u); });
    state.servers = data.servers;
    state.selected.forEach(function (u) { if (!known.has(u)) state.selected.delete(u); });
    renderLabels();
    render();
  }

  function setLive(ok) {
    if (ok) state.lastOk = Date.now();
    var stale = Date.now() - state.lastOk > 3 * POLL_MS;
    live.classList.toggle("stale", stale);
    live.lastChild.textContent = stale ? t("ui.live_stale") : t("ui.live_ok", {time: BM.stamp(state.lastOk / 1000)});
  }

  function poll() {
    var headers = state.etag ? {"If-None-Match": state.etag} : {};
    return BM.api("GET", DATA_URL, undefined, headers).then(function (res) {
      var serverTime = res.headers && parseFloat(res.headers.get("X-Server-Time"));
      if (serverTime) BM.setServerNow(serverTime);
      if (res.status === 200 && res.data) {
        state.etag = res.headers.get("ETag");
        accept(res.data);
        setLive(true);
      } else if (res.status === 304) {
        renderGrid(); // times ("12 s ago") move on
        setLive(true);
      } else {
        setLive(false);
      }
    });
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      if (document.hidden) { schedule(); return; }
      poll().then(schedule, schedule);
    }, POLL_MS);
  }

  search.addEventListener("input", function () { state.q = search.value; changed(); });
  groupBy.addEventListener("change", function () { state.group = groupBy.value; changed(); });
  labelPick.addEventListener("change", function () {
    var pair = labelPick.value.split("=");
    labelPick.selectedIndex = 0;
    if (pair.length < 2) return;
    /* labels match ignoring case, as everywhere (agent/labels.py) */
    var key = pair[0], value = pair.slice(1).join("=").toLowerCase();
    state.servers.forEach(function (s) {
      if (String((s.l || {})[key] || "").toLowerCase() === value && key in (s.l || {})) state.selected.add(s.u);
    });
    render();
  });
  document.getElementById("sel-visible").addEventListener("click", function () {
    visible().forEach(function (s) { state.selected.add(s.u); });
    render();
  });
  document.getElementById("sel-clear").addEventListener("click", function () {
    state.selected.clear();
    render();
  });
  actBtn.addEventListener("click", function () {
    BMActions.open(Array.from(state.selected).sort(naturalCompare), function () {
      state.etag = null;
      poll();
    });
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });

  readQuery();
  poll().then(schedule, schedule);
})();
