import type { ReactElement } from 'react';
import { useAppSelector } from '../store/index.js';
import { ChatRoom } from './ChatRoom.js';
import { BackendCard } from './BackendCard.js';
import { ConnectionCard } from './ConnectionCard.js';
import { EventLog } from './EventLog.js';
import { Header } from './Header.js';
import { NotificationsCard } from './NotificationsCard.js';
import { SignIn } from './SignIn.js';

export function App(): ReactElement {
  const user = useAppSelector((state) => state.auth.user);
  return (
    <div className="app">
      <Header />
      {user === null ? (
        <SignIn />
      ) : (
        <main className="workspace">
          <div className="main-column">
            <ChatRoom user={user} />
            <EventLog />
          </div>
          <aside className="sidebar">
            <ConnectionCard />
            <NotificationsCard user={user} />
            <BackendCard />
          </aside>
        </main>
      )}
    </div>
  );
}
