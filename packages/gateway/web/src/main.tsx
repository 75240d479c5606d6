import { AuthSocketProvider } from '@authsocket/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'react-redux';
import { websocketUrl } from './api.js';
import { App } from './components/App.js';
import { createDemoStore } from './store/index.js';

// One connection: the Redux middleware's client, which the React hook reads through the provider.
const { store, socket } = createDemoStore({ url: websocketUrl(window.location) });

const root = document.getElementById('root');
if (!root) throw new Error('no #root element');
createRoot(root).render(
  <StrictMode>
    <Provider store={store}>
      <AuthSocketProvider client={socket.client}>
        <App />
      </AuthSocketProvider>
    </Provider>
  </StrictMode>,
);
