/* The café at a glance: every server as a cell coloured by verdict, grouped by a label.

   Never old data as live: the indicator shows the data's age (the monitor's last pass), a
   reading older than a pass interval and a bit (or than a pass the page asked for) is
   marked old, and when the agent cannot be reached the grid turns grey under a banner and
   the times stop. After an action the targets show 操作中 until the read-back, then the
   read-back's power at once (until the monitor's next reading takes over). */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var VERDICTS = ["mismatch", "unreachable", "auth_failed", "dbc_path_broken", "unsupported",
                  "transitioning", "expected_off", "ok", "unknown"];
  var SORTS = ["name", "verdict", "power", "rental"];
  var POWER_ORDER = {on: 0, off: 1, unknown: 2};
  var RENTAL_ORDER = {rented: 0, unknown: 1, idle: 2};
  var POLL_MS = 5000, SOON_MS = 1000, OLD_SLACK_S = 15;
  var DATA_URL = "/ui/api/grid";

  var state = {servers: [], etag: null, selected: new Set(), verdicts: new Set(), q: "",
               group: "row", sort: "name", lastOk: 0, timer: null, offlineSince: null,
               passAt: null, interval: 60, askedAt: null, pending: new Map(), readBack: new Map()};

  var root = document.getElementById("grid");
  var summary = document.getElementById("summary");
  var search = document.getElementById("search");
  var groupBy = document.getElementById("group-by");
  var labelPick = document.getElementById("label-pick");
  var selCount = document.getElementById("sel-count");
  var actBtn = document.getElementById("act");
  var live = document.getElementById("live");
  var banner = document.getElementById("offline");
  var sortBy = el("select", {id: "sort-by"}, SORTS.map(function (k) {
    return el("option", {value: k, text: t("ui.sort_" + k)});
  }));
  document.getElementById("sort-slot").appendChild(el("label", {}, [t("ui.sort_by") + " ", sortBy]));

  function readQuery() {
    var p = new URLSearchParams(location.search);
    state.q = p.get("q") || "";
    state.group = p.get("group") || "row";
    state.sort = SORTS.indexOf(p.get("sort")) >= 0 ? p.get("sort") : "name";
    (p.get("verdict") || "").split(",").filter(Boolean).forEach(function (v) { state.verdicts.add(v); });
    search.value = state.q;
    groupBy.value = state.group;
    sortBy.value = state.sort;
  }

  function writeQuery() {
    var p = new URLSearchParams(location.search);
    if (state.q) p.set("q", state.q); else p.delete("q");
    if (state.group !== "row") p.set("group", state.group); else p.delete("group");
    if (state.sort !== "name") p.set("sort", state.sort); else p.delete("sort");
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

  /** The cell's shown state: the read-back of a staff action wins until a newer reading. */
  function shown(s) {
    var rb = state.readBack.get(s.u);
    if (rb && s.t !== null && s.t >= rb.at) { state.readBack.delete(s.u); rb = null; }
    return {v: rb ? rb.v : s.v, p: rb && rb.p ? rb.p : (s.p || "unknown"), rb: !!rb};
  }

  function sortKey(s) {
    if (state.sort === "verdict") return VERDICTS.indexOf(shown(s).v);
    if (state.sort === "power") return POWER_ORDER[shown(s).p] === undefined ? 3 : POWER_ORDER[shown(s).p];
    if (state.sort === "rental") return RENTAL_ORDER[(s.r || {}).state] === undefined ? 3 : RENTAL_ORDER[s.r.state];
    return 0;
  }

  function sorted(list) {
    return list.slice().sort(function (a, b) {
      return (sortKey(a) - sortKey(b)) || naturalCompare(a.u, b.u);
    });
  }

  function groups(list) {
    var byKey = new Map();
    sorted(list).forEach(function (s) {
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
    summary.appendChild(el("button", {type: "button", class: "chip" + (state.verdicts.size ? "" : " active"),
      "data-verdict": "", onclick: function () { state.verdicts.clear(); changed(); }},
      [el("span", {text: t("ui.all")}), el("span", {class: "count", text: String(state.servers.length)})]));
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

  /** Old: older than a pass interval and a bit, or than the pass this page asked for. */
  function isOld(s) {
    if (s.t === null || s.t === undefined) return false;
    var now = state.offlineSince ? state.offlineSince / 1000 : BM.serverNow();
    return now - s.t > state.interval + OLD_SLACK_S || (state.askedAt !== null && s.t < state.askedAt);
  }

  function checkedLine(s, old) {
    if (s.t === null || s.t === undefined) return t("ui.not_checked_yet");
    if (state.offlineSince) return t("ui.checked_ago", {ago: BM.stamp(s.t)});
    return old ? t("ui.reading_old", {ago: BM.ago(s.t)}) : t("ui.checked_ago", {ago: BM.ago(s.t)});
  }

  function cell(s) {
    var dl = s.dl ? BM.deeplinkState(s.dl.f, s.dl.res, s.dl.rot, s.dl.dup) : BM.deeplinkState("unknown");
    var now = shown(s), pending = state.pending.has(s.u), old = !now.rb && isOld(s);
    var boot = s.b ? BM.bootLabel(s.b) + (s.bp ? " · " + t("bootdev.persistent") : "") : t("ui.none");
    BMActions.noteRental(s.u, s.r);
    var pick = el("input", {type: "checkbox", class: "pick", "aria-label": t("ui.select"),
      checked: state.selected.has(s.u), onclick: function (e) { e.stopPropagation(); },
      onchange: function (e) { toggle(s.u, e.target.checked); }});
    return el("a", {class: "cell v-" + now.v + (state.selected.has(s.u) ? " selected" : "") +
      (old ? " old" : "") + (pending ? " pending" : ""),
      href: "/ui/servers/" + encodeURIComponent(s.u), "data-uuid": s.u, "data-verdict": now.v,
      "data-power": now.p, "data-rental": (s.r || {}).state || "unknown", title: s.d ? s.u + " — " + s.d : s.u}, [
      el("div", {class: "top"}, [pick, el("span", {class: "name", text: s.u}),
        el("span", {class: "badge v-" + now.v, text: pending ? t("ui.pending") : BM.verdictLabel(now.v)})]),
      s.d ? el("div", {class: "line desc", text: s.d}) : null,
      el("div", {class: "line"}, [el("span", {class: "pw-" + now.p, text: BM.powerLabel(now.p === "unknown" ? null : now.p)}),
        " · " + t("ui.boot_short") + " " + boot]),
      el("div", {class: "line"}, [BMActions.rentalTag(s.r, true)]),
      el("div", {class: "line small checked", text: checkedLine(s, old)}),
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
    root.classList.toggle("offline", !!state.offlineSince);
  }

  function hiddenSelected() {
    var shownNow = new Set(visible().map(function (s) { return s.u; }));
    return Array.from(state.selected).filter(function (u) { return !shownNow.has(u); }).length;
  }

  function renderSelection() {
    var hidden = hiddenSelected();
    selCount.textContent = hidden ? t("ui.selected_hidden", {count: state.selected.size, hidden: hidden})
      : t("ui.selected", {count: state.selected.size});
    selCount.classList.toggle("warn", hidden > 0);
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
    renderLive();
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
    state.passAt = data.pass_at;
    state.interval = data.interval_s || 60;
    if (state.askedAt !== null && state.passAt !== null && state.passAt >= state.askedAt) state.askedAt = null;
    state.selected.forEach(function (u) { if (!known.has(u)) state.selected.delete(u); });
    renderLabels();
    render();
  }

  /** The data's age (the monitor's last pass), or offline: the banner and the grey grid. */
  function renderLive() {
    var offline = !!state.offlineSince;
    live.classList.toggle("stale", offline || state.askedAt !== null);
    banner.hidden = !offline;
    if (offline) {
      banner.textContent = t("ui.offline_banner", {time: BM.stamp(state.offlineSince / 1000)});
      live.lastChild.textContent = t("ui.offline_short", {time: BM.stamp(state.lastOk / 1000)});
    } else if (state.askedAt !== null) {
      live.lastChild.textContent = t("ui.data_refreshing");
    } else {
      live.lastChild.textContent = state.passAt ? t("ui.data_age", {ago: BM.ago(state.passAt)}) : t("ui.data_none");
    }
  }

  function setOnline(ok) {
    if (ok) { state.lastOk = Date.now(); state.offlineSince = null; }
    else if (!state.offlineSince) state.offlineSince = Date.now();
  }

  function poll() {
    var headers = state.etag ? {"If-None-Match": state.etag} : {};
    return BM.api("GET", DATA_URL, undefined, headers).then(function (res) {
      var serverTime = res.headers && parseFloat(res.headers.get("X-Server-Time"));
      if (serverTime) BM.setServerNow(serverTime);
      var asked = res.headers && parseFloat(res.headers.get("X-Pass-Asked"));
      if (asked) state.askedAt = asked;
      if (res.status === 200 && res.data) {
        setOnline(true);
        state.etag = res.headers.get("ETag");
        accept(res.data);
      } else if (res.status === 304) {
        setOnline(true);
        render(); // times ("12 s ago") move on
      } else {
        var was = state.offlineSince;
        setOnline(false);
        if (!was) render(); // grey once, then the times stand still
      }
    });
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      if (document.hidden) { schedule(); return; }
      poll().then(schedule, schedule);
    }, state.askedAt !== null || state.readBack.size ? SOON_MS : POLL_MS);
  }

  /** The read-back as the monitor will judge it (off and idle: 预期关机; held: 正常). */
  function readBackOf(r) {
    var power = r.reading && r.reading.power;
    var row = state.servers.filter(function (s) { return s.u === r.uuid; })[0] || {};
    var idle = (row.r || {}).state === "idle";
    var v = !r.verified ? "transitioning" : (power === "off" && idle ? "expected_off" : "ok");
    return {at: BM.serverNow(), p: power || null, v: v};
  }

  BMActions.hooks.started = function (uuids) {
    uuids.forEach(function (u) { state.pending.set(u, true); });
    state.selected.clear(); // an action's selection is spent: the next one starts empty
    render();
  };
  BMActions.hooks.finished = function (uuids, results) {
    uuids.forEach(function (u) { state.pending.delete(u); });
    results.forEach(function (r) { if (r.ok) state.readBack.set(r.uuid, readBackOf(r)); });
    render();
    state.etag = null; // the next poll asks for a fresh pass
    schedule();
  };

  search.addEventListener("input", function () { state.q = search.value; changed(); });
  groupBy.addEventListener("change", function () { state.group = groupBy.value; changed(); });
  sortBy.addEventListener("change", function () { state.sort = sortBy.value; changed(); });
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
