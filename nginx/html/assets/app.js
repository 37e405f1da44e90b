// Placeholder frontend: shows the API's health, calling only /api/.
fetch("/api/v1/health/live")
  .then((r) => r.json())
  .then((doc) => { document.getElementById("health").textContent = doc.status; })
  .catch(() => { document.getElementById("health").textContent = "unreachable"; });
