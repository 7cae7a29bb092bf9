"""The `tenure` command (command.main): starts the web, the workers, the scheduler, the embedded demo
(command.demo seeds its data), and runs migrations, sweeps, backups and restores. It sits above
web/ and worker/: nothing of ours imports it."""
