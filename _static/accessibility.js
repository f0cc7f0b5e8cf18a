// Accessibility fix for the book theme, checked with axe-core (WCAG 2 A/AA) by tests/test_site.py. Jupyter Book adds
// every .js file of _static/ to each page.
// pydata-sphinx-theme draws each expandable entry of the navigation as a <summary> that holds only a chevron icon,
// so a screen reader announces a button without a name (axe: summary-name). Name it after the entry it expands.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("summary").forEach(function (summary) {
    if (summary.textContent.trim() || summary.getAttribute("aria-label")) {
      return;
    }
    var item = summary.closest("li");
    var link = item && item.querySelector(":scope > a");
    var name = link ? link.textContent.trim() : "";
    summary.setAttribute("aria-label", name ? "Sections of " + name : "Show or hide the sections");
  });
});
