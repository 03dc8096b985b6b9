/* Event rows (audit log and a server's events) and the paged audit log page. */
"use strict";

var BMEvents = (function () {
  var t = BM.t, el = BM.el;

  function actionText(e) {
    var base = BM.tOr("action." + e.action, e.action || BM.tOr("event_kind." + e.kind, e.kind));
    var d = e.detail || {};
    if (e.action === "bootdev" && d.device) {
      base += " " + BM.bootLabel(d.device) + (d.persistent ? " · " + t("bootdev.persistent") : "") +
        (d.uefi ? " · " + t("bootdev.uefi") : "");
    }
    return base;
  }

  function resultText(e) {
    if (e.kind === "verdict") return BM.verdictLabel(e.result);
    var text = BM.tOr("result." + e.result, e.result || "");
    if (e.result === "verified" || e.result === "unverified") return text;
    if (e.verified === true) return text + " · " + t("result.verified");
    if (e.verified === false && e.result === "ok") return text + " · " + t("result.unverified");
    return text;
  }

  function resultClass(e) {
    if (e.kind === "verdict") return "";
    if (e.action === "hook_failure") return "res-failed";
    if (e.verified === true) return "res-verified";
    if (e.result === "unverified" || (e.verified === false && e.result === "ok")) return "res-unverified";
    if (FAILED.test(e.result || "")) return "res-failed";
    return "";
  }

  var FAILED = /^(failed|error|refused|conflict|not_found|dead|ipmi_.*)$/;

  // Keys shown another way (action, result, readable text) or internal ids: left out.
  var HIDDEN = {device: 1, persistent: 1, uefi: 1, code: 1, command: 1, target: 1, message: 1,
                reading: 1, duration_s: 1, outbox_id: 1, token_id: 1, created_uuids: 1,
                updated_uuids: 1, created: 1, updated: 1, unchanged: 1, refused: 1, errors: 1,
                fields: 1, user: 1, count: 1, attempt: 1, source_ip: 1, step: 1, error: 1,
                role: 1, revoked_sessions: 1, revoked_tokens: 1};
  var LIST_MAX = 5;

  /** "PC-A01, PC-A02 … and 3 more": at most LIST_MAX seat ids, then a count. */
  function seatList(uuids, total) {
    var shown = uuids.slice(0, LIST_MAX).join(", ");
    var more = Math.max(total, uuids.length) - Math.min(uuids.length, LIST_MAX);
    return more > 0 ? shown + " " + t("detail.more", {count: more}) : shown;
  }

  /** What an event's detail says, in words: counts and seat ids, never internal ids. */
  function readableParts(d) {
    var parts = [];
    if (typeof d.created === "number" && d.created) {
      parts.push(t("detail.created", {count: d.created, list: seatList(d.created_uuids || [], d.created)}));
    }
    if (typeof d.updated === "number" && d.updated) {
      parts.push(t("detail.updated", {count: d.updated, list: seatList(d.updated_uuids || [], d.updated)}));
    }
    if (d.unchanged) parts.push(t("detail.unchanged", {count: d.unchanged}));
    if (d.refused) parts.push(t("detail.refused", {count: d.refused}));
    if (d.fields && d.fields.length) parts.push(t("detail.fields", {fields: d.fields.join(", ")}));
    if (d.user) parts.push(t("detail.user", {user: d.user}));
    if (d.role) parts.push(t("detail.role", {role: BM.tOr("role." + d.role, d.role)}));
    if (d.revoked_sessions !== undefined) {
      parts.push(t("detail.revoked", {sessions: d.revoked_sessions, tokens: d.revoked_tokens || 0}));
    }
    if (typeof d.count === "number") parts.push(t("detail.queued", {count: d.count}));
    if (typeof d.attempt === "number" && d.attempt > 1) parts.push(t("detail.attempt", {n: d.attempt}));
    if (d.step) parts.push(t("detail.step", {step: d.step}));
    if (d.error) parts.push(t("detail.error", {error: d.error}));
    if (d.source_ip) parts.push(t("detail.from_ip", {ip: d.source_ip}));
    return parts;
  }

  function readingText(r) {
    if (!r) return "";
    if (r.error) return BM.tOr("reason.ipmi_" + r.error, r.error);
    var bits = [];
    if (r.power) bits.push(BM.powerLabel(r.power));
    if (r.boot_device) bits.push(BM.bootLabel(r.boot_device));
    return bits.length ? t("ui.read_back", {state: bits.join(" · ")}) : "";
  }

  function duration(s) {
    if (typeof s !== "number") return "?";
    if (s < 120) return Math.round(s) + " s";
    return s < 7200 ? Math.round(s / 60) + " min" : (s / 3600).toFixed(1) + " h";
  }

  /** A failed boot-hook run the PC reported (agent.hook.reports): its own message, as sent. */
  function hookFailureText(e) {
    var d = e.detail || {};
    var text = t("ui.hook_failure_detail", {exit_code: d.exit_code, attempt: d.attempt,
      uptime: duration(d.uptime_s), message: d.message || ""});
    if (d.seat_state === "pending") text += " · " + t("ui.seat_pending_report", {seat: d.seat || "?"});
    if (d.repeats) text += " · repeats=" + d.repeats;
    return text;
  }

  function detailText(e) {
    var d = e.detail || {};
    if (e.action === "hook_failure") return hookFailureText(e);
    if (e.kind === "verdict") {
      var prev = d.previous ? BM.verdictLabel(d.previous) : "—";
      var why = (d.reasons || []).map(function (r) { return BM.tOr("reason." + r, r); }).join("; ");
      return prev + " → " + BM.verdictLabel(e.result) + (why ? " (" + why + ")" : "");
    }
    var parts = [];
    if (d.code && d.code.indexOf("ipmi_") === 0) parts.push(BM.tOr("reason." + d.code, d.code));
    else if (d.code && d.code !== "verified" && d.code !== "unverified") parts.push(BM.tOr("ui.result_" + d.code, d.code));
    var seen = readingText(d.reading);
    if (seen) parts.push(seen);
    if (typeof d.duration_s === "number") parts.push(d.duration_s.toFixed(1) + " s");
    parts = parts.concat(readableParts(d));
    Object.keys(d).filter(function (k) { return !HIDDEN[k]; }).forEach(function (k) {
      var v = d[k];
      parts.push(k + "=" + (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)));
    });
    return parts.join(" · ");
  }

  /** One <tr> for an event record (API shape: id, ts, actor, kind, action, server_uuid, ...). */
  function row(e, withServer) {
    var cells = [el("td", {class: "nowrap", text: BM.stamp(e.ts)}),
                 el("td", {text: e.actor.charAt(0) === "@" ? BM.tOr("actor." + e.actor.slice(1), e.actor) : e.actor})];
    if (withServer) {
      cells.push(el("td", {class: "nowrap"}, [e.server_uuid ? el("a", {href: "/ui/servers/" + encodeURIComponent(e.server_uuid),
                                                         text: e.server_uuid}) : "—"]));
    }
    cells.push(el("td", {class: "nowrap", text: actionText(e)}),
               el("td", {class: "nowrap " + resultClass(e), text: resultText(e)}),
               el("td", {text: detailText(e)}));
    return el("tr", {"data-event-id": String(e.id), "data-kind": e.kind}, cells);
  }

  var HEADINGS = ["ui.time", "ui.actor", "ui.server", "ui.action", "ui.result", "ui.detail"];
  // Filter inputs by id -> query parameter (the same names in the page's URL and the API's).
  var FILTERS = {kind: "kind", action: "action", "server-filter": "seat", "actor-filter": "actor",
                 from: "from", to: "to"};

  function fillTable(tableNode, items) {
    BM.clear(tableNode);
    tableNode.appendChild(el("thead", {}, [el("tr", {}, HEADINGS.map(function (h) {
      return el("th", {text: t(h)});
    }))]));
    var rows = items.map(function (e) { return row(e, true); });
    if (!rows.length) rows = [el("tr", {}, [el("td", {colspan: 6, class: "muted", text: t("ui.nothing_yet")})])];
    tableNode.appendChild(el("tbody", {}, rows));
  }

  /** The audit log page: newest first, keyset pages, filters kept in the URL. */
  function auditPage() {
    var tableNode = document.getElementById("events");
    var older = document.getElementById("older");
    var newer = document.getElementById("newer");
    var info = document.getElementById("page-info");
    var form = document.getElementById("filters");
    var stack = []; // before-ids of the pages above the current one
    var current = null, next = null;
    var params = new URLSearchParams(location.search);
    var limit = Math.min(200, Math.max(1, parseInt(params.get("limit") || "50", 10) || 50));
    Object.keys(FILTERS).forEach(function (id) {
      var value = params.get(FILTERS[id]);
      document.getElementById(id).value = value !== null ? value : (id === "kind" ? "audit" : "");
    });

    function filterQuery() {
      var q = new URLSearchParams();
      Object.keys(FILTERS).forEach(function (id) {
        var value = document.getElementById(id).value.trim();
        if (value && !(id === "kind" && value === "all")) q.set(FILTERS[id], value);
      });
      return q;
    }

    function load(before) {
      var q = filterQuery();
      if (before) q.set("before_id", String(before));
      q.set("limit", String(limit));
      BM.api("GET", "/api/v1/events?" + q.toString()).then(function (res) {
        if (!res.ok) {
          info.textContent = BM.errorText(res.status, res.data);
          info.className = "notice error";
          return;
        }
        info.className = "muted";
        current = before;
        next = res.data.next_before_id;
        fillTable(tableNode, res.data.items);
        older.disabled = !next;
        newer.disabled = stack.length === 0;
        info.textContent = t("ui.page_n", {n: stack.length + 1});
        var keep = filterQuery();
        if (document.getElementById("kind").value === "all") keep.set("kind", "all");
        if (keep.get("kind") === "audit") keep.delete("kind");
        if (limit !== 50) keep.set("limit", String(limit));
        history.replaceState(null, "", location.pathname + (keep.toString() ? "?" + keep : ""));
      });
    }

    function reload() { stack = []; load(null); }
    older.addEventListener("click", function () { if (next) { stack.push(current); load(next); } });
    newer.addEventListener("click", function () { if (stack.length) load(stack.pop()); });
    form.addEventListener("change", reload);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); reload(); });
    form.addEventListener("reset", function () {
      setTimeout(function () { document.getElementById("kind").value = "audit"; reload(); }, 0);
    });
    var debounce = null;
    form.addEventListener("input", function (ev) {
      if (ev.target.type !== "search") return;
      clearTimeout(debounce);
      debounce = setTimeout(reload, 300);
    });
    load(null);
  }

  if (document.body.getAttribute("data-page") === "audit") auditPage();
  return {row: function (e) { return row(e, false); }, hookFailureText: hookFailureText};
})();
