// The training page: the worker's agreement and courses through the API, with the subject token the
// app put in the fragment (never sent to the server). Everything shown is text, never HTML.
(function () {
  "use strict";
  const root = document.getElementById("learn");
  const t = JSON.parse(root.dataset.strings);
  const status = root.querySelector("[data-testid=status]");
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  history.replaceState(null, "", location.pathname);  // the token leaves the address bar
  const lang = root.dataset.lang;
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => String(values[k]));
  const el = (tag, text, attrs) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  };
  const day = (iso) => iso ? iso.slice(0, 10) : "";

  async function api(method, path, body) {
    const response = await fetch("/api/v1" + path, {
      method, headers: Object.assign({ "Authorization": "Bearer " + token, "Accept-Language": lang },
                                     body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined });
    if (response.status === 401) throw new Error(t.expired);
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || t.failed);
    }
    return response.headers.get("content-type") === "application/pdf" ? response.blob() : response.json();
  }
  const say = (text) => { status.textContent = text; status.hidden = !text; };
  const guard = (work) => work().catch((error) => say(error.message));

  async function showAgreement() {
    const a = await api("GET", "/me/agreement");
    const box = document.getElementById("agreement");
    box.hidden = false;
    box.querySelector("[data-testid=agreement-title]").textContent = a.title;
    box.querySelector("[data-testid=agreement-body]").textContent = a.body;
    const state = box.querySelector("[data-testid=agreement-state]");
    const button = box.querySelector("[data-testid=sign]");
    button.textContent = t.sign;
    button.hidden = Boolean(a.signed_at);
    state.textContent = a.signed_at ? fill(t.signed, { day: day(a.signed_at) }) : "";
    button.onclick = () => guard(async () => {
      await api("POST", "/me/agreement/signature", { sha256: a.sha256 });
      await showAgreement();
    });
  }

  async function showCourses() {
    document.getElementById("course").hidden = true;
    const list = document.querySelector("[data-testid=courses]");
    list.replaceChildren();
    for (const entry of await api("GET", "/me/training")) {
      const item = el("li", undefined, { "data-course": entry.course_id });
      item.append(el("strong", entry.title), " · ", el("span", t.reasons[entry.reason] || entry.reason));
      if (entry.expires_at && entry.reason === "done") item.append(" · ", fill(t.valid_until, { day: day(entry.expires_at) }));
      const open = el("button", entry.reason === "done" ? t.retake : t.start, { type: "button", class: "secondary" });
      open.onclick = () => guard(() => showCourse(entry.course_id));
      item.append(" ", open);
      list.append(item);
    }
    document.getElementById("courses").hidden = false;
    say("");
  }

  async function showCourse(courseId) {
    const course = await api("GET", "/me/training/" + encodeURIComponent(courseId));
    document.getElementById("courses").hidden = true;
    const box = document.getElementById("course");
    box.hidden = false;
    box.querySelector("[data-testid=course-title]").textContent = course.title;
    const modules = box.querySelector("[data-testid=modules]");
    modules.replaceChildren(...course.modules.map((m) => {
      const section = el("section");
      section.append(el("h3", m.title), el("pre", m.body, { class: "prose" }));
      return section;
    }));
    const quiz = box.querySelector("[data-testid=quiz]");
    quiz.replaceChildren();
    course.quiz.forEach((q, number) => {
      const field = el("fieldset", undefined, { "data-question": String(number) });
      field.append(el("legend", (number + 1) + ". " + q.text));
      q.options.forEach((option, index) => {
        const label = el("label");
        label.append(el("input", undefined, { type: "radio", name: "q" + number, value: String(index) }), " " + option);
        field.append(label);
      });
      quiz.append(field);
    });
    const submit = el("button", t.submit, { type: "submit" });
    quiz.append(submit);
    const result = box.querySelector("[data-testid=result]");
    const after = box.querySelector("[data-testid=after]");
    result.textContent = "";
    after.hidden = true;
    const key = "web-" + courseId + "-" + Date.now();  // one attempt per press, a retry is the same attempt
    quiz.onsubmit = (event) => {
      event.preventDefault();
      const answers = course.quiz.map((_, n) => quiz.querySelector("input[name=q" + n + "]:checked"));
      if (answers.some((a) => !a)) { result.textContent = t.answer_all; return; }
      guard(async () => {
        const attempt = await fetch("/api/v1/me/training/" + encodeURIComponent(courseId) + "/attempts", {
          method: "POST", body: JSON.stringify({ answers: answers.map((a) => Number(a.value)) }),
          headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json", "Idempotency-Key": key + "-" + answers.map((a) => a.value).join("") },
        }).then((r) => r.ok ? r.json() : Promise.reject(new Error(t.failed)));
        if (!attempt.passed) {
          result.textContent = fill(t.failed_quiz, { score: attempt.score, mark: course.pass_mark });
          return;
        }
        result.textContent = fill(t.passed, { score: attempt.score, no: attempt.certificate_no });
        submit.disabled = true;
        showAfter(after, attempt);
      });
    };
    const back = box.querySelector("[data-testid=back]");
    back.textContent = t.back;
    back.onclick = (event) => { event.preventDefault(); guard(showCourses); };
  }

  function showAfter(after, attempt) {
    after.replaceChildren();
    const download = el("button", t.certificate, { type: "button", class: "secondary", "data-testid": "certificate" });
    download.onclick = () => guard(async () => {
      const pdf = await api("GET", "/me/training/attempts/" + attempt.id + "/certificate");
      const link = el("a", undefined, { href: URL.createObjectURL(pdf), download: "certificate-" + attempt.certificate_no + ".pdf" });
      document.body.append(link);
      link.click();
      link.remove();
    });
    const rating = el("p", t.rate + " ", { "data-testid": "rating" });
    for (let stars = 1; stars <= 5; stars++) {
      const star = el("button", "★".repeat(stars), { type: "button", class: "secondary", "data-stars": String(stars) });
      star.onclick = () => guard(async () => {
        await api("PUT", "/me/training/attempts/" + attempt.id + "/rating", { rating: stars });
        rating.replaceChildren(t.thanks);
      });
      rating.append(star, " ");
    }
    after.append(el("p").appendChild(download).parentNode, rating);
    after.hidden = false;
  }

  // Opened again with a new token (the same page, another fragment): start over with it.
  window.addEventListener("hashchange", () => { if (location.hash.includes("token=")) location.reload(); });
  if (!token) { say(t.no_token); return; }
  guard(async () => { await showAgreement(); await showCourses(); });
})();
