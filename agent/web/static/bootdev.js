/* Boot device in plain words: what the PC will do at its next boot (docs/operations.md §11). */
"use strict";

var BMBoot = (function () {
  var t = BM.t;

  function device(name) { return BM.bootLabel(name); }

  /** A monitor reading (boot_device, boot_valid, boot_persistent) -> "Next boot: network (PXE) (once)". */
  function nextBootText(r) {
    if (!r || !r.boot_device) return t("ui.none");
    if (r.boot_valid === false || r.boot_device === "default" || r.boot_device === "none") {
      return t("next_boot.default");
    }
    return t(r.boot_persistent ? "next_boot.every" : "next_boot.once", {device: device(r.boot_device)});
  }

  /** An action's read-back against the request -> what will happen at the next boot, plainly. */
  function resultText(reading, req) {
    var r = reading || {};
    if (r.error) return BM.tOr("reason.ipmi_" + r.error, r.error) + " — " + t("next_boot.unread");
    if (r.boot_valid === null || r.boot_valid === undefined) return t("next_boot.unread");
    if (r.boot_valid === false) {
      if (req.device === "none") return t("next_boot.default");
      if (r.boot_selector === req.device) return t("next_boot.not_reported", {device: device(req.device)});
      return t("next_boot.not_kept");
    }
    var text = nextBootText(r);
    if (r.boot_device === req.device &&
        (r.boot_persistent !== req.persistent || r.boot_uefi !== req.uefi)) {
      text += "; " + t("next_boot.options_not_reported");
    }
    return text;
  }

  return {nextBootText: nextBootText, resultText: resultText};
})();
