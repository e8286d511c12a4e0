// A little help where plain HTML cannot: scanner group separators, export form, live list.
"use strict";

// Keyboard-wedge scanners send the GS1 group separator as Ctrl+] or as the GS key; browsers
// drop it from text inputs, so write the visible symbol the server reads as a separator.
function keepGroupSeparators(input) {
  input.addEventListener("keydown", function (event) {
    var gs = event.key === "GroupSeparator" || event.keyCode === 29 ||
      (event.ctrlKey && (event.key === "]" || event.code === "BracketRight"));
    if (!gs) return;
    event.preventDefault();
    var start = input.selectionStart, end = input.selectionEnd;
    input.value = input.value.slice(0, start) + "\u241d" + input.value.slice(end);
    input.setSelectionRange(start + 1, start + 1);
  });
}

// Show only the scope fields the chosen scope needs (all stay in the form without script).
function followScope(form) {
  var select = form.querySelector("[data-scope]");
  if (!select) return;
  function update() {
    form.querySelectorAll("[data-for]").forEach(function (box) {
      box.hidden = box.getAttribute("data-for").split(" ").indexOf(select.value) < 0;
    });
  }
  select.addEventListener("change", update);
  update();
}

// While a bundle is being built, reload the list, unless someone is filling in the form.
function refreshWhileBusy() {
  if (!document.querySelector("tr[data-busy]")) return;
  var touched = false;
  document.querySelectorAll("[data-export-form] input, [data-export-form] textarea, [data-export-form] select")
    .forEach(function (field) { field.addEventListener("input", function () { touched = true; }); });
  setTimeout(function () { if (!touched) window.location.replace(window.location.pathname); }, 1500);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-scanner]").forEach(keepGroupSeparators);
  document.querySelectorAll("[data-export-form]").forEach(followScope);
  refreshWhileBusy();
});
