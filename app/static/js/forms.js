// Labelled form fields, and the API's validation errors (problem details `errors[].loc`) placed beside them.

import { h, nextId } from "./dom.js";

/**
 * A labelled control. `loc` is the field's path in the request body ("steps", "model.hidden_dim"),
 * which is how a 422's errors[].loc (["body", "model", "hidden_dim"]) finds its way back here.
 */
export function field({ label, control, hint = "", loc, inline = false }) {
  const id = control.id || nextId("field");
  control.id = id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  control.dataset.loc = loc;
  if (hint) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: inline ? "field field-inline" : "field", dataset: { field: loc } },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }),
  );
}

/** The control whose loc is the longest prefix of the error's loc (without the leading "body"). */
function controlFor(form, loc) {
  const parts = loc[0] === "body" ? loc.slice(1) : loc.slice();
  while (parts.length) {
    const match = form.querySelector(`[data-loc="${CSS.escape(parts.join("."))}"]`);
    if (match) return match;
    parts.pop();
  }
  return null;
}

function setError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  error.textContent = error.hidden ? message : `${error.textContent} ${message}`;
  error.hidden = false;
  control.setAttribute("aria-invalid", "true");
  const described = new Set((control.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
  described.add(error.id);
  control.setAttribute("aria-describedby", [...described].join(" "));
  // A field folded away in "Advanced" must be shown to be fixed.
  const details = control.closest("details");
  if (details) details.open = true;
}

export function clearErrors(form) {
  for (const error of form.querySelectorAll(".field-error")) {
    error.hidden = true;
    error.textContent = "";
    const control = form.querySelector(`#${CSS.escape(error.id.replace(/-error$/, ""))}`);
    if (!control) continue;
    control.removeAttribute("aria-invalid");
    const rest = (control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== error.id);
    if (rest.length) control.setAttribute("aria-describedby", rest.join(" "));
    else control.removeAttribute("aria-describedby");
  }
}

/**
 * Show each error beside its field; those that match no field go in the summary.
 * Returns the summary element (an alert listing every error, linking to its field).
 */
export function showErrors(form, errors, title) {
  const items = [];
  for (const error of errors) {
    const control = controlFor(form, error.loc || []);
    const where = (error.loc || []).filter((p) => p !== "body").join(".") || "request";
    if (control) {
      setError(control, error.msg);
      const label = form.querySelector(`label[for="${CSS.escape(control.id)}"]`)?.textContent || where;
      items.push(
        h(
          "li",
          {},
          h(
            "a",
            {
              href: `#${control.id}`,
              // A hash link would change the route; move the focus instead.
              onclick: (event) => {
                event.preventDefault();
                control.focus();
              },
            },
            `${label}: ${error.msg}`,
          ),
        ),
      );
    } else {
      items.push(h("li", {}, `${where}: ${error.msg}`));
    }
  }
  return h(
    "div",
    { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", {}, title),
    items.length ? h("ul", {}, items) : null,
  );
}

/** A number input's value: undefined when empty, NaN when the browser holds text that is not a number. */
export function numberValue(input) {
  if (input.validity.badInput) return Number.NaN;
  if (input.value.trim() === "") return undefined;
  return Number(input.value);
}
