// The shell: asks for the API key, routes #/… addresses to views, and tidies up after each view.

import { checkKey, clearKey, getKey, setKey } from "./api.js";
import * as compare from "./compare.js";
import { announce, h, replace } from "./dom.js";
import * as experimentPage from "./experiment-page.js";
import * as experimentsList from "./experiments-list.js";
import * as jobPage from "./job-page.js";
import * as jobsList from "./jobs-list.js";
import * as newExperiment from "./new-experiment.js";
import * as newJob from "./new-job.js";

const view = document.getElementById("view");
const signOut = document.getElementById("sign-out");
let unmount = null;

/** #/jobs, #/jobs/{id}, #/new, #/compare?ids=a,b, #/experiments, #/experiments/new, #/experiments/{id} → {name, module, args}. */
function route() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, search = ""] = raw.split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "jobs" && parts[1]) {
    return { name: "jobs", title: "Job", module: jobPage, args: { params, id: decodeURIComponent(parts[1]) } };
  }
  if (parts[0] === "new") return { name: "new", title: "New job", module: newJob, args: { params } };
  if (parts[0] === "experiments" && parts[1] === "new") {
    return { name: "experiments", title: "New experiment", module: newExperiment, args: { params } };
  }
  if (parts[0] === "experiments" && parts[1]) {
    const id = decodeURIComponent(parts[1]);
    return { name: "experiments", title: "Experiment", module: experimentPage, args: { params, id } };
  }
  if (parts[0] === "experiments") {
    return { name: "experiments", title: "Experiments", module: experimentsList, args: { params } };
  }
  if (parts[0] === "compare") return { name: "compare", title: "Compare jobs", module: compare, args: { params } };
  return { name: "jobs", title: "Jobs", module: jobsList, args: { params } };
}

function markNav(name) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function leave() {
  if (unmount) unmount();
  unmount = null;
}

function keyPrompt(reason = "") {
  leave();
  markNav(null);
  signOut.hidden = true;
  document.title = "Sign in · wgan-service";
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "api-key-hint",
  });
  const error = h("p", { class: "field-error", id: "api-key-error", hidden: true });
  const button = h("button", { type: "submit", class: "button button-primary" }, "Continue");
  const form = h(
    "form",
    { class: "key-form", novalidate: true },
    h("h1", { id: "key-heading", tabindex: "-1" }, "Sign in"),
    reason ? h("p", { class: "message message-error", role: "alert" }, reason) : null,
    h(
      "div",
      { class: "field" },
      h("label", { for: "api-key" }, "API key"),
      input,
      h(
        "p",
        { class: "hint", id: "api-key-hint" },
        "Started with ",
        h("code", {}, "make run"),
        "? Its key is in ",
        h("code", {}, "var/dev-api-key"),
        ". Otherwise create one with ",
        h("code", {}, ".venv/bin/wgan-service keys create --name NAME"),
        " (in Docker: ",
        h("code", {}, "docker compose exec api wgan-service keys create --name NAME"),
        "). It is kept for this tab only (session storage) and sent only to this service.",
      ),
      error,
    ),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    const fail = (message) => {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "api-key-hint api-key-error");
      input.focus();
    };
    if (!key) return fail("Enter an API key.");
    button.disabled = true;
    try {
      const problem = await checkKey(key);
      if (problem) return fail(problem.status === 401 ? "That key is not valid or has been revoked." : problem.message);
      setKey(key);
      announce("Signed in");
      show();
    } catch (err) {
      fail(`Could not reach the service: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });
  replace(view, h("section", { class: "view view-key", "aria-labelledby": "key-heading" }, form));
  input.focus();
}

let first = true;
function show() {
  if (!getKey()) {
    keyPrompt();
    return;
  }
  leave();
  signOut.hidden = false;
  const target = route();
  markNav(target.args.id ? null : target.name);
  document.title = `${target.title} · wgan-service`;
  unmount = target.module.mount(view, target.args) || null;
  // After a navigation, keyboard and screen-reader users start at the new content, not the old link.
  if (!first) {
    view.focus({ preventScroll: true });
    window.scrollTo(0, 0);
    announce(target.title);
  }
  first = false;
}

signOut.addEventListener("click", () => {
  clearKey();
  keyPrompt();
});
window.addEventListener("hashchange", show);
// Any call answered 401 (a revoked key) brings the prompt back, saying why.
window.addEventListener("auth-required", () => keyPrompt("The API key was refused; enter it again."));
show();
