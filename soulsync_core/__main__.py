from soulsync_core.cli import main

raise SystemExit(main())
