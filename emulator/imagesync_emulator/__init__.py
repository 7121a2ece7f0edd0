"""An offline Tencent Cloud API emulator (CVM images, tag, TDMQ CMQ, EventBridge, region) for imagesync tests."""
