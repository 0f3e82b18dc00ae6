// Run in the page by test_i18n.py: the list of problems on the screen (empty when clean).
(async (lang) => {
  const { CATALOGUE } = await import('/js/i18n.js');
  const other = lang === 'fr' ? 'en' : 'fr';
  const problems = [];
  const mine = new Set(Object.values(CATALOGUE).map((e) => e[lang]));
  const foreign = Object.values(CATALOGUE).map((e) => e[other])
    .filter((s) => !mine.has(s) && s.replace(/\{\w+\}/g, '').trim().length >= 4);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    if (!text || /^[\s—–:.,()#-]*$/.test(text)) continue;
    if (!node.parentElement.closest('[data-i18n],[data-data]')) problems.push('not from the catalogue: ' + text + ' in ' + node.parentElement.outerHTML.slice(0, 150));
  }
  for (const el of document.querySelectorAll('[data-i18n]')) {
    const entry = CATALOGUE[el.dataset.i18n];
    if (!entry) { problems.push('unknown key: ' + el.dataset.i18n); continue; }
    if (!/\{\w+\}/.test(entry[lang]) && el.textContent !== entry[lang]) problems.push('stale text: ' + el.dataset.i18n);
    if (entry[lang] !== entry[other] && el.textContent === entry[other]) problems.push('other language: ' + el.dataset.i18n);
  }
  for (const el of document.querySelectorAll('[placeholder],[aria-label],[alt],[title]')) {
    for (const name of ['placeholder', 'aria-label', 'alt', 'title']) {
      const value = el.getAttribute(name);
      if (value !== null && !mine.has(value)) problems.push(name + ' not from the catalogue: ' + el.outerHTML.slice(0, 120));
    }
  }
  const visible = document.body.innerText;
  for (const text of foreign) {
    const fixed = text.split(/\{\w+\}/).sort((a, b) => b.length - a.length)[0].trim();
    for (let at = visible.indexOf(fixed); fixed.length >= 8 && at >= 0; at = visible.indexOf(fixed, at + 1)) {
      const edge = (c) => !c || !/\p{L}/u.test(c);
      if (edge(visible[at - 1]) && edge(visible[at + fixed.length])) { problems.push('other-language text shown: ' + fixed); break; }
    }
  }
  if (document.documentElement.lang !== (lang === 'fr' ? 'fr-CA' : 'en')) problems.push('html lang');
  return problems;
})
