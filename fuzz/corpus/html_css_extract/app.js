const menu = await fetch('/data/menu.json'); img.src = "img/hero.png"; const re = /\/not\/a\/url/; // "/in/comment.png"
import('./lazy.js'); const u = new URL("../x.json", location);
