/**
 * The live page's script, as text: plain browser JavaScript that the page
 * carries inline (nothing else is fetched). It reads the server's `/feed`
 * (feed messages are LiveStates from appliance/api/liveFeed.ts; a
 * `reachability` event says whether the appliance's feed flows), lists each
 * machine's live actors, and marks the states of the one selected (the first,
 * until a click picks another) with the class `active`.
 */

export const REACHABILITY_EVENT = 'reachability';

export const clientScript = String.raw`
(() => {
  const actors = new Map();
  const chosen = new Map();
  const status = document.getElementById('status');
  const keyOf = (s) => s.system + ' ' + s.actor;

  // The data-state ids of a snapshot's value: the root, and every state on the way to each active leaf.
  const activeIds = (machine, value) => {
    const ids = [machine];
    const walk = (prefix, v) => {
      if (typeof v === 'string') return void ids.push(prefix + '.' + v);
      for (const [key, child] of Object.entries(v)) {
        ids.push(prefix + '.' + key);
        walk(prefix + '.' + key, child);
      }
    };
    walk(machine, value);
    return ids;
  };
  const leaves = (machine, value) => activeIds(machine, value).filter((id, i, all) => !all.some((other) => other.startsWith(id + '.'))).map((id) => id.slice(machine.length + 1) || '(no states)');

  const render = (machine) => {
    const section = document.querySelector('section[data-machine="' + CSS.escape(machine) + '"]');
    if (!section) return;
    const mine = [...actors.values()].filter((a) => a.machine === machine);
    const shown = mine.find((a) => keyOf(a) === chosen.get(machine)) || mine[0];
    section.querySelector('.count').textContent = mine.length === 0 ? 'no live actor' : mine.length === 1 ? '1 live actor' : mine.length + ' live actors';
    section.classList.toggle('live', mine.length > 0);
    section.querySelector('.actors').replaceChildren(...mine.map((a) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = a.actor;
      button.addEventListener('click', () => { chosen.set(machine, keyOf(a)); render(machine); });
      const state = document.createElement('span');
      state.className = 'actor-state';
      state.textContent = leaves(machine, a.state).join(', ') + (a.status === 'active' ? '' : ' (' + a.status + ')') + (a.event ? ' after ' + a.event : '');
      item.className = a === shown ? 'actor shown' : 'actor';
      item.dataset.actor = a.actor;
      item.append(button, ' ', state);
      return item;
    }));
    section.querySelectorAll('.active').forEach((el) => el.classList.remove('active'));
    if (!shown) return;
    for (const id of activeIds(machine, shown.state)) {
      section.querySelector('[data-state="' + CSS.escape(id) + '"]')?.classList.add('active');
    }
  };
  const renderAll = () => document.querySelectorAll('section[data-machine]').forEach((s) => render(s.dataset.machine));
  const say = (text, ok) => {
    status.textContent = text;
    status.className = ok ? 'status reachable' : 'status unreachable';
  };

  const feed = new EventSource('feed');
  feed.addEventListener('${REACHABILITY_EVENT}', (e) => {
    const { reachable, detail } = JSON.parse(e.data);
    say(reachable ? 'live: ' + detail : 'the appliance is unreachable: ' + detail, reachable);
    // Connected again: the feed starts over with every live actor. Unreachable: nothing is known.
    actors.clear();
    renderAll();
  });
  feed.onmessage = (e) => {
    const s = JSON.parse(e.data);
    if (s.status === 'stopped') actors.delete(keyOf(s));
    else actors.set(keyOf(s), s);
    render(s.machine);
  };
  feed.onerror = () => say('the visualizer server is unreachable; retrying', false);
})();
`;
