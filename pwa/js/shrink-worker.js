// Worker: makes the upload copy and thumbnail of a photo off the main thread (shrink.js).
import { shrinkPhoto } from "./shrink.js";

self.onmessage = async (event) => {
  const { id, blob } = event.data;
  try {
    self.postMessage({ id, ...(await shrinkPhoto(blob)) });
  } catch (error) {
    self.postMessage({ id, error: String(error?.message || error) });
  }
};
