/* Seat keys waiting for approval, and DeepLink device code changes: approve or reject them. */
"use strict";

(function () {
  var t = BM.t, el = BM.el;
  var ENDPOINTS = JSON.parse(document.getElementById("bm-endpoints").textContent);
  var table = document.getElementById("seats");
  var changes = document.getElementById("device-changes");
  var notice = document.getElementById("seat-notice");

  function head(keys) {
    return el("thead", {}, [el("tr", {}, keys.map(function (k) { return el("th", {text: k ? t(k) : ""}); }))]);
  }

  function labelText(labels) {
    return Object.keys(labels || {}).sort().map(function (k) { return k + "=" + labels[k]; }).join(",");
  }

  function seatRow(s) {
    var box = s.state === "pending" && BM.canAct ?
      el("input", {type: "checkbox", class: "seat-pick", "data-uuid": s.uuid,
                   "data-fingerprint": s.fingerprint, "aria-label": s.uuid + " " + s.fingerprint}) : "";
    return el("tr", {"data-uuid": s.uuid, "data-state": s.state}, [
      el("td", {}, [box]),
      el("td", {}, [el("a", {href: "/ui/servers/" + encodeURIComponent(s.uuid), text: s.uuid})]),
      el("td", {text: s.ip || ""}), el("td", {text: labelText(s.labels)}),
      el("td", {text: BM.tOr("seat_state." + s.state, s.state)}),
      el("td", {class: "nowrap", text: s.fingerprint}), el("td", {text: s.created_ip || ""}),
      el("td", {class: "nowrap", text: BM.stamp(s.created_at)}),
      el("td", {text: s.decided_by || ""})]);
  }

  function changeRow(c) {
    var button = BM.canAct ? el("button", {class: "btn small", type: "button", text: t("ui.approve_device"),
      onclick: function () { act(ENDPOINTS.device_approve, {uuids: [c.uuid]}); }}) : "";
    return el("tr", {"data-uuid": c.uuid}, [el("td", {text: c.uuid}), el("td", {text: c.pinned_device_id}),
      el("td", {text: c.pending_device_id}), el("td", {class: "nowrap", text: BM.stamp(c.pending_at)}),
      el("td", {}, [button])]);
  }

  function show(data) {
    BM.clear(table);
    table.appendChild(head(["", "ui.uuid", "ui.ip", "ui.labels", "ui.seat_state", "ui.fingerprint",
      "ui.ip", "ui.enrolled_at", "ui.decided_by"]));
    var items = data.items || [];
    table.appendChild(el("tbody", {}, items.length ? items.map(seatRow) :
      [el("tr", {}, [el("td", {colspan: "9", class: "muted", text: t("ui.no_pending_seats")})])]));
    BM.clear(changes);
    changes.appendChild(head(["ui.uuid", "ui.pinned_device_id", "ui.seen_device_id", "ui.enrolled_at", ""]));
    changes.appendChild(el("tbody", {}, (data.device_id_changes || []).map(changeRow)));
  }

  function load() {
    BM.api("GET", ENDPOINTS.seats).then(function (res) {
      if (res.ok && res.data) show(res.data);
      else say(BM.errorText(res.status, res.data), true);
    });
  }

  function say(text, bad) {
    BM.clear(notice);
    notice.appendChild(el("div", {class: bad ? "notice error" : "notice good", text: text}));
  }

  function act(url, payload) {
    BM.api("POST", url, payload).then(function (res) {
      if (res.ok && res.data) {
        var failed = res.data.results.filter(function (r) { return !r.ok; }).map(function (r) {
          return r.uuid + ": " + (BM.tOr(r.code, null) !== null ? t(r.code, r.params) : r.message);
        });
        say([t("ui.seats_done", {done: res.data.done, total: res.data.results.length})].concat(failed).join(" · "),
            !res.data.ok);
      } else {
        say(BM.errorText(res.status, res.data), true);
      }
      load();
    });
  }

  /** The ticked rows: their servers, and the very keys shown (a key enrolled since is not approved unseen). */
  function picked() {
    var boxes = document.querySelectorAll(".seat-pick:checked");
    var uuids = [], fingerprints = [];
    Array.prototype.forEach.call(boxes, function (box) {
      uuids.push(box.getAttribute("data-uuid"));
      fingerprints.push(box.getAttribute("data-fingerprint"));
    });
    return {uuids: uuids, fingerprints: fingerprints};
  }

  document.getElementById("approve-selected").addEventListener("click", function () {
    var chosen = picked();
    if (chosen.uuids.length) act(ENDPOINTS.seats_approve, chosen);
  });
  document.getElementById("reject-selected").addEventListener("click", function () {
    var chosen = picked();
    if (chosen.uuids.length) act(ENDPOINTS.seats_reject, chosen);
  });
  document.getElementById("approve-label").addEventListener("click", function () {
    var label = document.getElementById("seat-label").value.trim();
    if (label) act(ENDPOINTS.seats_approve, {label: label});
  });
  load();
})();
