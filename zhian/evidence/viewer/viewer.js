"use strict";
// The offline evidence viewer: shows a sealed run and re-checks it here, with nothing but WebCrypto.
// Every value from the pack is data: the DOM is built with createElement and text nodes only.
(() => {
  const GENESIS = "0".repeat(64);
  const EXCERPT = 4000;
  const STATUSES = ["pass", "fail", "partial", "error", "not_assessed"];
  const MSG = {
    zh: {
      title: "zhian 证据包", other_lang: "English", summary: "运行概况", checks: "浏览器内复核",
      findings: "判定与发现", records: "账本记录（共 {0} 条）",
      community: "小区", run_id: "运行编号", sealed: "封存", signer: "签名者指纹", claimed: "（清单声称 {0}）",
      chain_head: "链头", counts: "记录数", interrupted: "中断", recovered: "事后封存", score: "得分", grade: "等级 {0}", yes: "是", no: "否",
      banner_pending: "正在复核…",
      banner_bad: "✘ 未通过验证：{0}",
      banner_unsupported: "⚠ 链已验证，但此浏览器无法检查 Ed25519 签名：请用 zhian verify 复核",
      banner_nocrypto: "⚠ 此浏览器无法复核（没有 WebCrypto）：{0}",
      rec: "记录 {0}（{1}）", sep: "，", probe_is: "探针 {0}", device_is: "设备 {0}",
      p_missing: "记录 {0} 缺失（下一条是 {1}）", p_hash: "{0}：内容与其哈希不符", p_json: "{0}：内容不是 JSON",
      p_chain: "{0}：未接续记录 {1}（链断裂）", p_index: "{0}：索引列与哈希内容不一致",
      p_ledger: "账本无法读取：{0}", p_no_manifest: "缺少 manifest.json：该运行未封存",
      p_bad_manifest: "manifest.json 无法读取", p_signature: "manifest.sig 与 manifest.json 不符（签名无效）",
      p_count: "清单封存了 {0} 条记录，账本有 {1} 条", p_head: "清单封存的链头与账本不同",
      p_file_altered: "{0}：封存后被改动（sha256 不符）", p_file_unsealed: "{0}：不在清单中",
      p_export: "导出时 zhian verify 未通过：{0}",
      c_chain_ok: "{0} 条记录逐条重算 sha256，prev_hash 链完整", c_chain_bad: "链在前 {0} 条记录完好，之后断裂：{1}",
      c_head_ok: "清单的记录数与链头 {0}… 与账本一致", c_sig_ok: "Ed25519 签名有效（覆盖 manifest.json 的原始字节）",
      c_sig_bad: "Ed25519 签名无效", c_sig_absent: "没有可检查的签名",
      c_sig_unsupported: "此浏览器不支持 Ed25519，签名未检查（{0}）", c_files_ok: "{0} 与清单中的 sha256 一致",
      c_export_ok: "导出时 zhian verify 已通过（含 artefacts/ 与每个文件）",
      c_export_bad: "导出时 zhian verify 未通过（以 --force 导出，见 NOT-VERIFIED.txt）：",
      c_artefacts: "artefacts/ 中的原始回复不在浏览器中检查：解压后运行 zhian verify run/",
      f_search: "搜索：设备、探针、指标、原因…", f_all_indicators: "全部指标", f_all_devices: "全部设备",
      f_all_status: "全部状态", shown: "显示 {0} / {1} 条发现", no_indicator: "（无指标）", verdict: "机器判定",
      col_device: "设备", col_probe: "探针", col_status: "状态", col_reason: "原因", col_detail: "说明",
      col_evidence: "证据", col_seq: "序号", col_kind: "类型", col_time: "时间", col_hash: "哈希", col_check: "复核",
      evidence_n: "证据 {0} 条", facts: "测得事实", ev_missing: "账本中没有记录 {0}",
      method: "方法", address: "地址", time: "时间", duration: "耗时", device_time: "设备时钟", result: "结果",
      library: "库", artefact: "原始回复", hash: "记录哈希", request: "请求摘录", response: "回复摘录",
      ok: "成功", error: "错误：{0}", verified: "✔ 已验证", unverified: "✘ 未验证",
      truncated: "…（已截断，共 {0} 字符）",
    },
    en: {
      title: "zhian evidence pack", other_lang: "中文", summary: "Run summary", checks: "Re-checked in this browser",
      findings: "Verdicts and findings", records: "Ledger records ({0} in all)",
      community: "Community", run_id: "Run id", sealed: "Sealed", signer: "Signer fingerprint",
      claimed: " (the manifest claims {0})", chain_head: "Chain head", counts: "Records", interrupted: "Interrupted", recovered: "Recovered",
      score: "Score", grade: "grade {0}", yes: "yes", no: "no",
      banner_pending: "Checking…",
      banner_bad: "✘ NOT verified: {0}",
      banner_unsupported: "⚠ chain verified, but this browser cannot check Ed25519 signatures: re-check with zhian verify",
      banner_nocrypto: "⚠ this browser cannot re-check the pack (no WebCrypto): {0}",
      rec: "record {0} ({1})", sep: ", ", probe_is: "probe {0}", device_is: "device {0}",
      p_missing: "record {0} is missing (next is {1})", p_hash: "{0}: its content does not match its hash",
      p_json: "{0}: its content is not JSON", p_chain: "{0}: it does not follow record {1} (chain broken)",
      p_index: "{0}: its index columns differ from its hashed content", p_ledger: "the ledger cannot be read: {0}",
      p_no_manifest: "manifest.json is missing: the run was not sealed", p_bad_manifest: "manifest.json is unreadable",
      p_signature: "manifest.sig: the signature does not match manifest.json",
      p_count: "the manifest sealed {0} ledger records, the ledger has {1}",
      p_head: "the manifest's sealed chain head differs from the ledger's",
      p_file_altered: "{0}: altered since it was sealed (sha256 differs)", p_file_unsealed: "{0}: not covered by the manifest",
      p_export: "zhian verify failed at export: {0}",
      c_chain_ok: "{0} records re-hashed (sha256), prev_hash chain complete",
      c_chain_bad: "the chain holds for {0} records, then breaks: {1}",
      c_head_ok: "the manifest's record count and chain head {0}… match the ledger",
      c_sig_ok: "Ed25519 signature valid over manifest.json's exact bytes", c_sig_bad: "Ed25519 signature invalid",
      c_sig_absent: "no signature to check", c_sig_unsupported: "this browser has no Ed25519: signature not checked ({0})",
      c_files_ok: "{0} match their sha256 in the manifest",
      c_export_ok: "zhian verify passed at export (including artefacts/ and every file)",
      c_export_bad: "zhian verify FAILED at export (exported with --force, see NOT-VERIFIED.txt):",
      c_artefacts: "raw replies in artefacts/ are not checked here: unzip and run zhian verify run/",
      f_search: "Search: device, probe, indicator, reason…", f_all_indicators: "All indicators",
      f_all_devices: "All devices", f_all_status: "All statuses", shown: "{0} of {1} findings shown",
      no_indicator: "(no indicator)", verdict: "machine verdict",
      col_device: "Device", col_probe: "Probe", col_status: "Status", col_reason: "Reason", col_detail: "Detail",
      col_evidence: "Evidence", col_seq: "Seq", col_kind: "Kind", col_time: "Time", col_hash: "Hash", col_check: "Check",
      evidence_n: "{0} evidence records", facts: "Measured facts", ev_missing: "record {0} is not in the ledger",
      method: "Method", address: "Address", time: "Time", duration: "Duration", device_time: "Device clock",
      result: "Result", library: "Library", artefact: "Raw reply", hash: "Record hash", request: "Request excerpt",
      response: "Response excerpt", ok: "ok", error: "error: {0}", verified: "✔ verified", unverified: "✘ not verified",
      truncated: "… (truncated, {0} characters in all)",
    },
  };

  const data = JSON.parse(document.getElementById("zhian-data").textContent);
  const state = { lang: "zh", result: null, q: "", indicator: "", device: "", status: "" };
  const utf8 = new TextDecoder("utf-8");
  const $ = (id) => document.getElementById(id);

  function t(key, ...args) {
    const text = MSG[state.lang][key] ?? MSG.en[key] ?? key;
    return text.replace(/\{(\d+)\}/g, (_, i) => String(args[Number(i)]));
  }

  // The report's own words (its gettext catalogues, embedded at export): {name} placeholders.
  const words = data.words ?? { zh: {}, en: {} };
  const has = (key) => Object.prototype.hasOwnProperty.call(words[state.lang] ?? {}, key);
  function w(key, vars = {}, fallback = key) {
    const text = has(key) ? words[state.lang][key] : fallback;
    return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined || vars[name] === null ? "—" : String(vars[name])));
  }
  const reasonText = (code) => (code ? w("reason." + code, {}, code) : "");
  function shownValue(key, value) {
    if (key === "effect" && typeof value === "string" && has("effect." + value)) return w("effect." + value);
    if (typeof value === "number" && !Number.isInteger(value)) return String(Math.round(value * 10) / 10);
    if (Array.isArray(value)) return value.join(", ");
    return value;
  }
  function detailText(f) {
    // As the report: Chinese from the catalogue's sentence; English the probe's own, but a check
    // that could not be completed in the catalogue's plain sentence.
    const key = "detail." + f.reason;
    if (has(key) && (state.lang === "zh" || f.status === "error" || !f.detail)) {
      const vars = { device: f.device };
      for (const [k, v] of Object.entries(f.facts ?? {})) vars[k] = shownValue(k, v);
      return w(key, vars);
    }
    return state.lang === "en" ? (f.detail || reasonText(f.reason)) : reasonText(f.reason) + "。";
  }
  const titleOf = (id) => (data.titles?.[id]?.[state.lang] ?? "");

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const b64bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const parseJson = (bytes) => { try { return JSON.parse(utf8.decode(bytes)); } catch { return null; } };

  async function sha256hex(bytes) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const records = data.records.map((r) => {
    const bytes = r.body_b64 != null ? b64bytes(r.body_b64) : new TextEncoder().encode(r.body);
    return { ...r, bytes, parsed: parseJson(bytes), verified: false };
  });
  const byId = new Map(records.map((r) => [r.id, r]));
  const findings = records.filter((r) => r.kind === "finding" && r.parsed).map((r) => r.parsed);
  const shownFile = (name) => (data.files_b64[name] ? parseJson(b64bytes(data.files_b64[name])) : null);

  // ---- re-verification: the same checks as `zhian verify`, in the same order ----

  function describe(r) {
    const parts = [r.kind, r.probe && t("probe_is", r.probe), r.device && t("device_is", r.device)];
    return t("rec", r.seq, parts.filter(Boolean).join(t("sep")));
  }

  async function rowProblem(r, expected, prev) {
    if (r.seq !== expected) return () => t("p_missing", expected, r.seq);
    if ((await sha256hex(r.bytes)) !== r.hash) return () => t("p_hash", describe(r));
    const b = r.parsed;
    if (!b || typeof b !== "object" || Array.isArray(b)) return () => t("p_json", describe(r));
    if (r.prev_hash !== prev || b.prev_hash !== prev) return () => t("p_chain", describe(r), expected - 1);
    const same = b.seq === r.seq && b.id === r.id && b.kind === r.kind && (b.probe ?? null) === r.probe
      && (b.device ?? null) === r.device && (b.started_at ?? null) === r.started_at;
    return same ? null : () => t("p_index", describe(r));
  }

  async function checkChain() {
    const start = data.chain_start || GENESIS; // a monitor segment starts from the previous one's head
    if (data.ledger_error) return { ok: false, checked: 0, head: start, broken: { seq: null, text: () => t("p_ledger", data.ledger_error) } };
    let prev = start;
    for (const [i, r] of records.entries()) {
      const text = await rowProblem(r, i + 1, prev);
      if (text) return { ok: false, checked: i, head: prev, broken: { seq: i + 1, text } };
      r.verified = true;
      prev = r.hash;
    }
    return { ok: true, checked: records.length, head: prev, broken: null };
  }

  async function checkSignature(publicKey, signatureB64, bytes) {
    if (!signatureB64) return { state: "absent" };
    let key;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return e.name === "NotSupportedError" ? { state: "unsupported", why: String(e) } : { state: "bad" };
    }
    try {
      return { state: (await crypto.subtle.verify({ name: "Ed25519" }, key, b64bytes(signatureB64), bytes)) ? "ok" : "bad" };
    } catch {
      return { state: "bad" };
    }
  }

  async function checkSeal(chain) {
    const seal = { manifest: null, signature: { state: "absent" }, fingerprint: null, files: [], problems: [] };
    if (!data.manifest_b64) { seal.problems.push(() => t("p_no_manifest")); return seal; }
    const bytes = b64bytes(data.manifest_b64);
    const manifest = parseJson(bytes);
    let publicKey;
    try { publicKey = b64bytes(manifest.signed_by.public_key); } catch { seal.problems.push(() => t("p_bad_manifest")); return seal; }
    seal.manifest = manifest;
    seal.fingerprint = "sha256:" + (await sha256hex(publicKey)).slice(0, 32);
    seal.signature = await checkSignature(publicKey, data.signature_b64, bytes);
    if (seal.signature.state === "bad" || seal.signature.state === "absent") seal.problems.push(() => t("p_signature"));
    const ledger = manifest.ledger || {};
    if (chain.ok && ledger.records !== chain.checked) seal.problems.push(() => t("p_count", ledger.records, chain.checked));
    else if (chain.ok && ledger.chain_head !== chain.head) seal.problems.push(() => t("p_head"));
    for (const [name, b64] of Object.entries(data.files_b64).sort()) {
      const want = (manifest.files || {})[name];
      const got = await sha256hex(b64bytes(b64));
      if (want === undefined) seal.problems.push(() => t("p_file_unsealed", name));
      else if (want !== got) seal.problems.push(() => t("p_file_altered", name));
      else seal.files.push(name);
    }
    return seal;
  }

  async function verifyAll() {
    const chain = await checkChain();
    const seal = await checkSeal(chain);
    const exported = data.export.verified;
    const verified = chain.ok && seal.problems.length === 0 && seal.signature.state === "ok" && exported;
    return { chain, seal, verified, exported };
  }

  function bannerText(result) {
    if (!result) return [t("banner_pending"), "pending"];
    if (result.error) return [t("banner_nocrypto", result.error), "warn"];
    const { chain, seal } = result;
    if (result.verified) {
      return [w("viewer.banner_ok", { records: chain.checked, fingerprint: seal.fingerprint }), "signed"];
    }
    if (!chain.ok) return [t("banner_bad", chain.broken.text()), "bad"];
    if (seal.problems.length) return [t("banner_bad", seal.problems[0]()), "bad"];
    if (!result.exported) return [t("banner_bad", t("p_export", data.export.problems[0])), "bad"];
    return [t("banner_unsupported"), "warn"];
  }

  // ---- rendering ----

  function renderBanner() {
    const [text, kind] = bannerText(state.result);
    $("banner").textContent = text;
    $("banner").className = "banner " + kind;
  }

  function row(dl, label, value, mono = false) {
    if (value === null || value === undefined || value === "") return;
    dl.append(el("dt", null, label), el("dd", mono ? "mono" : null, String(value)));
  }

  function scoreText(score) {
    if (!score || !score.levels) return null;
    const levels = Object.entries(score.levels).map(([name, l]) => `${name} ${l.total}/${l.max}`);
    return [...levels, t("grade", score.grade ?? "—")].join(" · ");
  }

  function renderSummary() {
    const dl = $("summary");
    dl.replaceChildren();
    const seal = state.result?.seal;
    const manifest = seal?.manifest ?? {};
    const run = shownFile("run.json") ?? {};
    const claimed = manifest.signed_by?.fingerprint;
    const signer = seal?.fingerprint ? seal.fingerprint + (claimed && claimed !== seal.fingerprint ? t("claimed", claimed) : "") : null;
    const counts = manifest.ledger?.counts ?? {};
    row(dl, t("community"), run.community?.name);
    row(dl, t("run_id"), manifest.run_id ?? run.run_id, true);
    row(dl, t("sealed"), manifest.sealed_at && `${manifest.sealed_at} · ${manifest.tool ?? ""}`);
    row(dl, t("signer"), signer, true);
    row(dl, t("chain_head"), manifest.ledger?.chain_head, true);
    row(dl, t("counts"), Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(" · ") || String(records.length));
    row(dl, t("interrupted"), manifest.interrupted === undefined ? null : t(manifest.interrupted ? "yes" : "no"));
    // sealed after a kill by `zhian seal --recover`: said in the report's words, with the reason
    if (manifest.recovered) {
      dl.append(el("dt", null, t("recovered")),
        el("dd", "recovered", w("run.recovered", { reason: manifest.recovery_reason })));
    }
    row(dl, t("score"), scoreText(shownFile("score.json")));
    row(dl, w("run.sampling"), samplingText(run.sampling));
    const reports = data.reports ?? [];
    const links = reports.map((name) => {
      const a = el("a", null, w("viewer.open_report", { name }));
      a.href = "run/reports/" + name;
      return a;
    });
    dl.append(el("dt", null, w("viewer.report")),
      el("dd", null, ...(links.length ? links.flatMap((a, i) => (i ? [" · ", a] : [a])) : [w("viewer.no_report")])));
    if (seal?.fingerprint) dl.append(el("dt", null, ""), el("dd", "compare", w("viewer.compare")));
  }

  function check(ul, kind, text, details = []) {
    const mark = { ok: "✔", bad: "✘", warn: "⚠", info: "ℹ" }[kind];
    const li = el("li", kind, el("span", "mark", mark), text);
    if (details.length) li.append(el("ul", null, ...details.map((d) => el("li", null, d))));
    ul.append(li);
  }

  function renderChecks() {
    const ul = $("checks");
    ul.replaceChildren();
    const result = state.result;
    if (!result || result.error) return;
    const { chain, seal } = result;
    if (chain.ok) check(ul, "ok", t("c_chain_ok", chain.checked));
    else check(ul, "bad", t("c_chain_bad", chain.checked, chain.broken.text()));
    const headOk = chain.ok && seal.manifest && seal.manifest.ledger?.chain_head === chain.head
      && seal.manifest.ledger?.records === chain.checked;
    if (headOk) check(ul, "ok", t("c_head_ok", chain.head.slice(0, 16)));
    const sig = seal.signature;
    if (sig.state === "ok") check(ul, "ok", t("c_sig_ok"));
    else if (sig.state === "unsupported") check(ul, "warn", t("c_sig_unsupported", sig.why));
    else check(ul, "bad", t(sig.state === "bad" ? "c_sig_bad" : "c_sig_absent"));
    if (seal.files.length) check(ul, "ok", t("c_files_ok", seal.files.join(", ")));
    for (const problem of seal.problems) check(ul, "bad", problem());
    if (data.export.verified) check(ul, "ok", t("c_export_ok"));
    else check(ul, "bad", t("c_export_bad"), data.export.problems);
    check(ul, "info", t("c_artefacts"));
  }

  const statusBadge = (status) => el("span", "badge s-" + (STATUSES.includes(status) ? status : "none"), status ? w("status." + status, {}, status) : "—");
  const indicatorsOf = (f) => (f.indicators && f.indicators.length ? f.indicators : [""]);
  const naturally = (a, b) => a.localeCompare(b, "en", { numeric: true });

  function matches(f) {
    if (state.indicator && !indicatorsOf(f).includes(state.indicator)) return false;
    if (state.device && f.device !== state.device) return false;
    if (state.status && f.status !== state.status) return false;
    if (!state.q) return true;
    const hay = [...indicatorsOf(f), ...indicatorsOf(f).map(titleOf), f.device, f.probe, f.status,
      w("status." + f.status), f.reason, reasonText(f.reason), detailText(f)];
    return hay.join("\n").toLowerCase().includes(state.q.toLowerCase());
  }

  function options(select, allLabel, values, current, label = (v) => v) {
    select.replaceChildren(el("option", null, allLabel));
    select.firstChild.value = "";
    for (const v of values) {
      const option = el("option", null, label(v));
      option.value = v;
      select.append(option);
    }
    select.value = current;
  }

  function renderFilters() {
    const indicators = [...new Set(findings.flatMap(indicatorsOf))].filter(Boolean).sort(naturally);
    const devices = [...new Set(findings.map((f) => f.device).filter(Boolean))].sort(naturally);
    const statuses = STATUSES.filter((s) => findings.some((f) => f.status === s));
    options($("f-device"), t("f_all_devices"), devices, state.device);
    options($("f-indicator"), t("f_all_indicators"), indicators, state.indicator,
      (id) => (titleOf(id) ? `${id} ${titleOf(id)}` : id));
    options($("f-status"), t("f_all_status"), statuses, state.status, (s) => w("status." + s, {}, s));
    $("q").placeholder = t("f_search");
    $("q").value = state.q;
  }

  function excerpt(label, text) {
    if (text === null || text === undefined || text === "") return null;
    const s = String(text);
    const shown = s.length > EXCERPT ? s.slice(0, EXCERPT) + t("truncated", s.length) : s;
    return el("div", null, el("div", "muted", label), el("pre", null, shown));
  }

  function evidenceCard(id) {
    const r = byId.get(id);
    if (!r) return el("div", "record unverified", t("ev_missing", id));
    const b = r.parsed ?? {};
    const m = b.method ?? {};
    const dl = el("dl", "grid");
    row(dl, t("method"), [m.protocol, m.operation].filter(Boolean).join(" "));
    row(dl, t("address"), m.address, true);
    row(dl, t("time"), b.started_at, true);
    row(dl, t("duration"), typeof b.duration_s === "number" ? `${b.duration_s} s` : null);
    row(dl, t("device_time"), b.device_time, true);
    row(dl, t("result"), b.ok === undefined ? null : b.ok ? t("ok") : t("error", b.error ?? ""));
    row(dl, t("library"), b.library);
    row(dl, t("artefact"), b.raw_sha256 && `run/artefacts/${b.raw_sha256} (${b.raw_size ?? "?"} B)`, true);
    row(dl, t("hash"), r.hash, true);
    const head = el("div", null, el("strong", null, describe(r)), " · ", t(r.verified ? "verified" : "unverified"));
    return el("div", "record " + (r.verified ? "verified" : "unverified"), head, dl,
      excerpt(t("request"), b.request), excerpt(t("response"), b.response));
  }

  function findingRows(f) {
    // The evidence opens in a full-width row under the finding, filled on first open (runs are large).
    const ids = f.evidence ?? [];
    const box = el("td", "evidence-box");
    box.colSpan = 6;
    const extra = el("tr", null, box);
    extra.hidden = true;
    const button = el("button", "evidence", t("evidence_n", ids.length));
    button.type = "button";
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      if (!box.hasChildNodes()) {
        if (f.facts && Object.keys(f.facts).length) box.append(excerpt(t("facts"), JSON.stringify(f.facts, null, 2)));
        for (const id of ids) box.append(evidenceCard(id));
      }
      extra.hidden = !extra.hidden;
      button.setAttribute("aria-expanded", String(!extra.hidden));
    });
    const cells = [f.device, f.probe, statusBadge(f.status), reasonText(f.reason), detailText(f), button];
    return [el("tr", null, ...cells.map((c) => el("td", null, c ?? ""))), extra];
  }

  function renderGroups() {
    const shown = findings.filter(matches);
    const groups = new Map();
    for (const f of shown) {
      for (const ind of indicatorsOf(f)) {
        if (state.indicator && ind !== state.indicator) continue;
        if (!groups.has(ind)) groups.set(ind, []);
        groups.get(ind).push(f);
      }
    }
    const container = $("groups");
    container.replaceChildren();
    // Problems first: failed, then partial, could-not-judge, waiting, passed; then by id.
    const rank = (ind) => {
      const order = ["fail", "partial", "error", "not_assessed", "pass"].indexOf(data.verdicts[ind]?.status);
      return order < 0 ? 5 : order;
    };
    const ordered = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || naturally(a, b));
    for (const ind of ordered) {
      const verdict = data.verdicts[ind];
      const title = el("h3", null, ind || t("no_indicator"), ind ? el("span", "ind-title", titleOf(ind)) : null);
      if (verdict) title.append(el("span", "note", t("verdict")), statusBadge(verdict.status), el("span", "note", verdictLine(groups.get(ind))));
      const heads = ["col_device", "col_probe", "col_status", "col_reason", "col_detail", "col_evidence"];
      const table = el("table", null, el("thead", null, el("tr", null, ...heads.map((h) => el("th", null, t(h))))),
        el("tbody", null, ...groups.get(ind).flatMap(findingRows)));
      container.append(el("div", "group", title, table));
    }
    $("shown").textContent = t("shown", shown.length, findings.length);
  }

  function samplingText(sampling) {
    // As the report's summary: whether a 7.4 sample was taken, of how many, with which seed.
    if (!sampling) return null;
    const drawn = Object.entries(sampling.groups ?? {}).filter(([, g]) => g.size < g.population);
    if (sampling.mode !== "inspection" || !drawn.length) return w("screen.sampling.every");
    const groups = drawn.map(([name, g]) => w("screen.sampling.group", {
      size: g.size, population: g.population, group: w("kind." + name, {}, name), rule: String(g.rule ?? "").split(":")[0],
    }));
    return w("screen.sampling.sampled", { seed: sampling.seed, groups: groups.join("; ") });
  }

  function verdictLine(found) {
    const counts = {};
    for (const f of found) counts[f.status] = (counts[f.status] ?? 0) + 1;
    const parts = ["fail", "partial", "error", "not_assessed", "pass"].filter((s) => counts[s])
      .map((s) => w("verdict.count", { n: counts[s], status: w("status." + s, {}, s) }));
    return w("verdict.counts", { counts: parts.join(", ") });
  }

  function renderRecords() {
    const details = $("records");
    details.querySelector("summary").textContent = t("records", records.length);
    const box = $("record-table");
    box.replaceChildren();
    if (!details.open) return;
    const broken = state.result?.chain?.broken?.seq;
    const heads = ["col_seq", "col_kind", "col_probe", "col_device", "col_time", "col_hash", "col_check"];
    const rows = records.map((r) => {
      const tr = el("tr", r.seq === broken ? "broken" : null, ...[r.seq, r.kind, r.probe, r.device, r.started_at]
        .map((v) => el("td", null, v === null ? "" : String(v))));
      tr.append(el("td", "mono", r.hash.slice(0, 16) + "…"), el("td", null, t(r.verified ? "verified" : "unverified")));
      return tr;
    });
    box.append(el("table", null, el("thead", null, el("tr", null, ...heads.map((h) => el("th", null, t(h))))),
      el("tbody", null, ...rows)));
  }

  function render() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    document.title = t("title");
    $("lang").textContent = t("other_lang");
    renderBanner();
    renderSummary();
    renderChecks();
    renderFilters();
    renderGroups();
    renderRecords();
  }

  $("lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; render(); });
  $("q").addEventListener("input", (e) => { state.q = e.target.value; renderGroups(); });
  for (const [id, key] of [["f-indicator", "indicator"], ["f-device", "device"], ["f-status", "status"]]) {
    $(id).addEventListener("change", (e) => { state[key] = e.target.value; renderGroups(); });
  }
  $("records").addEventListener("toggle", renderRecords);

  render();
  window.zhianVerification = (async () => {
    try {
      state.result = await verifyAll();
    } catch (e) {
      state.result = { error: String(e), verified: false };
    }
    render();
    const { chain, seal } = state.result;
    return {
      verified: state.result.verified,
      banner: $("banner").textContent,
      records: records.length,
      checked: chain ? chain.checked : 0,
      broken: chain && chain.broken ? chain.broken.seq : null,
      signature: seal ? seal.signature.state : null,
      problems: seal ? seal.problems.map((p) => p()) : [],
    };
  })();
})();
