// Print sheet: open the print dialog once the page (and its QR image) has
// loaded, and wire the "Print / Save as PDF" button. Loaded with defer from
// the print page only; the page works without it.
(function () {
  "use strict";
  var button = document.getElementById("print");
  if (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  }
  if (document.readyState === "complete") {
    window.print();
  } else {
    window.addEventListener("load", function () {
      window.print();
    });
  }
})();
