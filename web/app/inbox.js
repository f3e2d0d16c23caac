/*  Photos shared to the app (Web Share Target). The service worker (sw.js)
    receives the share's POST and keeps its files in IndexedDB, database
    "rapidphoto", store "inbox", one record per share: {id, received, files}.
    take() hands them over and removes them, so each share is queued once.
*/
function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('rapidphoto', 1);
    request.onupgradeneeded = () => request.result.createObjectStore('inbox', { keyPath: 'id', autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

//  Every shared file waiting, removed from the store in the same transaction.
export async function take() {
  if (!('indexedDB' in window)) return [];
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction('inbox', 'readwrite');
      const store = tx.objectStore('inbox');
      const files = [];
      const all = store.getAll();
      all.onsuccess = () => {
        for (const record of all.result) files.push(...record.files);
        store.clear();
      };
      tx.oncomplete = () => resolve(files);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}
